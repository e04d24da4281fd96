"""Compact, columnar map layers for many cells and photos, drawn on a canvas in the browser.

A GeoJSON feature per cell or photo costs hundreds of bytes and one SVG element each; a survey of
100,000 photos and 50,000 cells would not fit in a page people can open. Here each layer travels as
columns (corner coordinates, values, colour indices into a palette computed in Python) and a small
runtime (:data:`RUNTIME_JS`) draws it on a canvas and builds a popup only when one is clicked.

Every string in the data is HTML-escaped in Python before it is embedded; the runtime only formats
numbers and joins those strings into the popup table. Thumbnails must be ``data:image/jpeg`` URIs
made here.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# The runtime: plain ES5, no dependencies but Leaflet.
RUNTIME_JS = r"""
var ph = (function () {
  "use strict";
  var layers = [], renderers = {};
  function rendererFor(pane) {
    if (!renderers[pane]) { renderers[pane] = L.canvas({pane: pane, padding: 0.2}); }
    return renderers[pane];
  }
  function num(v, unit) {
    if (v === null || v === undefined || typeof v !== "number" || !isFinite(v)) { return "n/a"; }
    var a = Math.abs(v), t;
    if (Number.isInteger(v) && a < 1e15) { t = v.toLocaleString("en-US"); }
    else if (a >= 100) { t = Math.round(v).toLocaleString("en-US"); }
    else if (a >= 1) { t = v.toFixed(2); }
    else { t = String(Number(v.toPrecision(3))); }
    return unit ? t + " " + unit : t;
  }
  function popupHtml(spec, d, i) {
    var h = '<table class="ph-popup"><caption>' + spec.title + "</caption>";
    spec.rows.forEach(function (r) {
      var kind = r[1], v = null;
      if (kind === "num") { v = num(d.cols[r[2]][i], r[3]); }
      else if (kind === "range") {
        var lo = d.cols[r[2]][i], hi = d.cols[r[3]][i];
        if (lo !== null && hi !== null) { v = num(lo) + " to " + num(hi); }
      }
      else if (kind === "text") { v = d.cols[r[2]][i]; }
      else if (kind === "const") { v = r[2]; }
      if (v === null || v === undefined || v === "") { return; }
      h += "<tr><th>" + r[0] + "</th><td>" + v + "</td></tr>";
    });
    h += "</table>";
    var thumb = d.thumbs && d.thumbs[String(i)];
    if (thumb && thumb.indexOf("data:image/jpeg;base64,") === 0) {
      h += '<img class="ph-thumb" alt="photo with the detected litter boxed" src="' + thumb + '">';
    }
    return h;
  }
  function styleOf(d, fill, i) {
    var c = fill[i];
    return Object.assign({}, d.styles[d.style[i]], c >= 0 ? {fillColor: d.palette[c]} : {});
  }
  // Column layers are drawn on a canvas that takes no clicks (a canvas would swallow every click
  // over the whole map); a click on the map is tested against them here, topmost layer first.
  function inRing(latlng, ring) {
    var x = latlng.lng, y = latlng.lat, inside = false;
    for (var a = 0, b = ring.length - 1; a < ring.length; b = a++) {
      var xa = ring[a].lng, ya = ring[a].lat, xb = ring[b].lng, yb = ring[b].lat;
      if ((ya > y) !== (yb > y) && x < (xb - xa) * (y - ya) / (yb - ya) + xa) { inside = !inside; }
    }
    return inside;
  }
  function hitTest(map, latlng) {
    var here = map.latLngToContainerPoint(latlng);
    for (var k = layers.length - 1; k >= 0; k--) {
      var L0 = layers[k];
      if (!map.hasLayer(L0.group)) { continue; }
      if (L0.marks) {
        var best = -1, bestD = Infinity;
        for (var i = 0; i < L0.marks.length; i++) {
          var m = L0.marks[i];
          if (!L0.group.hasLayer(m)) { continue; }
          var dist = here.distanceTo(map.latLngToContainerPoint(m.getLatLng()));
          if (dist <= m.options.radius + 3 && dist < bestD) { best = i; bestD = dist; }
        }
        if (best >= 0) { return {layer: L0, i: best, latlng: L0.marks[best].getLatLng()}; }
      } else {
        for (var j = L0.shapes.length - 1; j >= 0; j--) {
          var s = L0.shapes[j];
          if (s.getBounds().contains(latlng) && inRing(latlng, s.getLatLngs()[0])) {
            return {layer: L0, i: j, latlng: latlng};
          }
        }
      }
    }
    return null;
  }
  function ownPane(pane) {
    return Object.keys(renderers).some(function (name) {
      return pane.classList.contains("leaflet-" + name + "-pane");
    });
  }
  // Listen in the capture phase, before Leaflet: a click over a cell or photo opens its popup even
  // where an area such as a sub-basin (whose popup would stop the event) lies under it; markers,
  // lines and controls drawn above keep their own clicks.
  function listen(map) {
    if (map._phListening) { return; }
    map._phListening = true;
    map.getContainer().addEventListener("click", function (ev) {
      var t = ev.target;
      if (!t.closest || t.closest(".leaflet-control-container, .ph-box, .leaflet-popup-pane")) { return; }
      var pane = t.closest(".leaflet-pane:not(.leaflet-map-pane)");
      if (pane && !ownPane(pane)) { return; }
      if (map.dragging && map.dragging.moved()) { return; }
      var hit = hitTest(map, map.mouseEventToLatLng(ev));
      if (!hit) { return; }
      ev.stopPropagation();
      L.popup({maxWidth: 360, minWidth: 180}).setLatLng(hit.latlng)
        .setContent(popupHtml(hit.layer.popup, hit.layer.d, hit.i)).openOn(map);
    }, true);
  }
  function register(group, d, o, extra) {
    var entry = Object.assign({group: group, d: d, popup: o.popup}, extra);
    layers.push(entry);
    group.on("add", function () { listen(group._map); });
    group.phData = d;
    return entry;
  }
  function cells(d, o) {
    var renderer = rendererFor(o.pane);
    var group = L.featureGroup(), shapes = [];
    for (var i = 0; i < d.n; i++) {
      var k = 8 * i, xy = d.xy;
      var ring = [[xy[k + 1], xy[k]], [xy[k + 3], xy[k + 2]], [xy[k + 5], xy[k + 4]], [xy[k + 7], xy[k + 6]]];
      var shape = L.polygon(ring, Object.assign({renderer: renderer, pane: o.pane, interactive: false},
        styleOf(d, d.fill, i)));
      group.addLayer(shape);
      shapes.push(shape);
    }
    group.phShapes = shapes;
    group.phRecolour = function (key) {
      var fill = d.fills && d.fills[key] ? d.fills[key] : d.fill;
      for (var j = 0; j < shapes.length; j++) { shapes[j].setStyle(styleOf(d, fill, j)); }
    };
    register(group, d, o, {shapes: shapes});
    return group;
  }
  function points(d, o) {
    var renderer = rendererFor(o.pane);
    var group = L.featureGroup(), marks = [];
    for (var i = 0; i < d.n; i++) {
      var m = L.circleMarker([d.lat[i], d.lon[i]], Object.assign(
        {renderer: renderer, pane: o.pane, interactive: false}, d.styles[d.style[i]]));
      group.addLayer(m);
      marks.push(m);
    }
    group.phFilter = function (from, to, cls) {
      for (var j = 0; j < marks.length; j++) {
        var day = d.day ? d.day[j] : null;
        var inside = day === null || ((from === null || day >= from) && (to === null || day <= to));
        if (inside && !group.hasLayer(marks[j])) { group.addLayer(marks[j]); }
        if (!inside && group.hasLayer(marks[j])) { group.removeLayer(marks[j]); }
        var seen = cls ? (d.cols["n_" + cls] ? d.cols["n_" + cls][j] : 0) : d.cols.items[j];
        marks[j].setStyle(d.styles[seen > 0 ? 1 : 0]);
      }
    };
    group.phMarks = marks;
    register(group, d, o, {marks: marks});
    return group;
  }
  function dayOf(text) {
    if (!text) { return null; }
    var t = Date.parse(text + "T00:00:00Z");
    return isNaN(t) ? null : Math.floor(t / 86400000);
  }
  function applyFilters() {
    var box = document.getElementById("ph-filter");
    if (!box) { return; }
    var from = dayOf(box.querySelector("[name=from]").value);
    var to = dayOf(box.querySelector("[name=to]").value);
    var select = box.querySelector("[name=cls]");
    var cls = select ? select.value : "";
    var shown = 0, total = 0;
    layers.forEach(function (entry) {
      var group = entry.group;
      if (group.phFilter) { group.phFilter(from, to, cls); }
      if (group.phRecolour) { group.phRecolour(cls); }
      if (entry.marks) { total += entry.marks.length; shown += group.getLayers().length; }
    });
    var out = box.querySelector(".ph-filter-count");
    if (out) {
      out.textContent = shown.toLocaleString("en-US") + " of " + total.toLocaleString("en-US") + " photos";
    }
  }
  function initFilters() {
    var box = document.getElementById("ph-filter");
    if (!box) { return; }
    L.DomEvent.disableClickPropagation(box);
    L.DomEvent.disableScrollPropagation(box);
    box.querySelectorAll("input, select").forEach(function (el) {
      el.addEventListener("change", applyFilters);
    });
    applyFilters();
  }
  return {num: num, cells: cells, points: points, popupHtml: popupHtml, hitTest: hitTest,
          applyFilters: applyFilters, initFilters: initFilters, layers: layers};
})();
"""


@dataclass(frozen=True, slots=True)
class ColumnData:
    """One columnar layer: the runtime function that draws it, its data, options and name.

    ``kind`` is ``cells`` or ``points``; ``name`` is shown in the layer switcher.
    """

    kind: str
    data: dict[str, Any]
    opts: dict[str, Any]
    name: str


@dataclass
class PopupSpec:
    """What a popup shows: a title and rows ``[label, kind, column(s)/value, unit]``.

    Kinds: ``num`` (column, unit), ``range`` (low column, high column), ``text`` (column of
    escaped strings), ``const`` (a fixed text). Labels, titles and constants are escaped here.
    """

    title: str
    rows: list[list[Any]] = field(default_factory=list)

    def num(self, label: str, column: str, unit: str = "") -> PopupSpec:
        """A number column, formatted in the page, with an optional unit."""
        self.rows.append([html.escape(label), "num", column, html.escape(unit)])
        return self

    def range(self, label: str, low: str, high: str) -> PopupSpec:
        """An interval from two number columns."""
        self.rows.append([html.escape(label), "range", low, high])
        return self

    def text(self, label: str, column: str) -> PopupSpec:
        """A column of escaped strings."""
        self.rows.append([html.escape(label), "text", column])
        return self

    def const(self, label: str, value: str) -> PopupSpec:
        """A fixed text."""
        self.rows.append([html.escape(label), "const", html.escape(value)])
        return self

    def to_json(self) -> dict[str, Any]:
        """The spec as the runtime reads it."""
        return {"title": html.escape(self.title), "rows": self.rows}


def numbers(values: npt.ArrayLike, digits: int = 4) -> list[float | int | None]:
    """A JSON-ready column: floats rounded to ``digits`` significant figures, NaN as null."""
    out: list[float | int | None] = []
    for value in np.asarray(values, dtype=np.float64).tolist():
        if not math.isfinite(value):
            out.append(None)
        elif value == int(value) and abs(value) < 1e15:
            out.append(int(value))
        else:
            out.append(float(f"{value:.{digits}g}"))
    return out


def texts(values: Sequence[Any]) -> list[str]:
    """A JSON-ready column of HTML-escaped strings (None and NaN as empty)."""
    out = []
    for value in values:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out.append("")
        else:
            out.append(html.escape(str(value)))
    return out


def corners(geometries: Sequence[Any]) -> list[float]:
    """Four corners (lon, lat) of each cell polygon, flattened, rounded to 6 decimals (about 0.1 m)."""
    flat: list[float] = []
    for geom in geometries:
        ring = list(geom.exterior.coords)[:4]
        while len(ring) < 4:
            ring.append(ring[-1])
        for lon, lat in ring:
            flat.extend((round(float(lon), 6), round(float(lat), 6)))
    return flat


def colour_index(values: FloatArray, bins: FloatArray) -> list[int]:
    """Index of each value's colour in a palette of ``len(bins) - 1`` steps; -1 where not finite."""
    idx = np.clip(np.searchsorted(bins, values, side="right") - 1, 0, len(bins) - 2)
    return [int(v) for v in np.where(np.isfinite(values), idx, -1)]


def cells_layer(
    name: str,
    geometries: Sequence[Any],
    columns: Mapping[str, list[Any]],
    *,
    fill: list[int],
    palette: list[str],
    style: list[int],
    styles: list[dict[str, Any]],
    popup: PopupSpec,
    pane: str,
    fills: Mapping[str, list[int]] | None = None,
) -> ColumnData:
    """A layer of cell polygons coloured server-side (``fill`` indexes ``palette``; -1: style only)."""
    data: dict[str, Any] = {
        "n": len(fill),
        "xy": corners(geometries),
        "cols": dict(columns),
        "fill": fill,
        "palette": palette,
        "style": style,
        "styles": styles,
    }
    if fills:
        data["fills"] = dict(fills)
    return ColumnData("cells", data, {"pane": pane, "popup": popup.to_json()}, name)


def points_layer(
    name: str,
    lon: FloatArray,
    lat: FloatArray,
    columns: Mapping[str, list[Any]],
    *,
    style: list[int],
    styles: list[dict[str, Any]],
    popup: PopupSpec,
    pane: str,
    day: list[int | None] | None = None,
    thumbs: Mapping[int, str] | None = None,
) -> ColumnData:
    """A layer of photo points (``styles[0]``: nothing seen, ``styles[1]``: litter seen)."""
    data: dict[str, Any] = {
        "n": int(lon.size),
        "lon": [round(float(v), 6) for v in lon],
        "lat": [round(float(v), 6) for v in lat],
        "cols": dict(columns),
        "style": style,
        "styles": styles,
    }
    if day is not None:
        data["day"] = day
    if thumbs:
        bad = [k for k, v in thumbs.items() if not v.startswith("data:image/jpeg;base64,")]
        if bad:
            raise ValueError("thumbnails must be data:image/jpeg URIs made by the renderer")
        data["thumbs"] = {str(k): v for k, v in thumbs.items()}
    return ColumnData("points", data, {"pane": pane, "popup": popup.to_json()}, name)
