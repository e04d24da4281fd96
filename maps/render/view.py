"""The map's initial view and the collapsible legend that must not hide it.

The view is fitted to the union of the basin and the survey (photos and density cells), padded a
little, so a survey of one small town opens with the whole basin around it, and a survey that
reaches past the basin's outline is not cut off. The fit happens twice: folium's ``fitBounds`` in
the map's own script (a sane view however the page is opened), then :data:`VIEW_JS` once the page
has laid out, with Leaflet's ``paddingTopLeft``/``paddingBottomRight`` set to the boxes that float
over the map (legend and layer control on the right, footer at the bottom), so the fitted bounds
land beside them rather than under them.

The legend is a ``<details>`` element: its summary is the toggle, it starts closed on narrow or low
screens (:data:`NARROW_PX`, :data:`LOW_PX`), and nothing in it needs the network.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

import geopandas as gpd

from plastic_hotspots.maps.render.rasters import Bounds

PAD_FRACTION = 0.03
"""Margin added around the union of basin and survey, as a fraction of its width and height."""
MIN_PAD_DEG = 0.002
"""Least margin in degrees (about 200 m), so a single survey point still gets a view around it."""
NARROW_PX = 700
"""Below this page width the legend starts collapsed."""
LOW_PX = 500
"""Below this page height the legend starts collapsed."""
GAP_PX = 12
"""Pixels kept free between the fitted bounds and a box floating over the map."""


def view_bounds(frames: Iterable[gpd.GeoDataFrame | None], pad_fraction: float = PAD_FRACTION) -> Bounds:
    """The padded union of the frames' bounds, ``[[south, west], [north, east]]`` as Leaflet wants.

    Frames that are None, empty or without finite bounds are skipped. The frames must be in
    EPSG:4326 (as every layer of ``hotspots.gpkg`` is).

    Args:
        frames: The basin, then whatever else the view must show (survey photos, density cells).
        pad_fraction: Margin on every side as a fraction of the union's extent (at least
            :data:`MIN_PAD_DEG`).

    Returns:
        The bounds, latitudes clamped to Web Mercator's range and longitudes to [-180, 180].

    Raises:
        ValueError: No frame has any finite bounds.
    """
    boxes: list[tuple[float, float, float, float]] = []
    for frame in frames:
        if frame is None or frame.empty:
            continue
        west, south, east, north = (float(v) for v in frame.total_bounds)
        if all(math.isfinite(v) for v in (west, south, east, north)):
            boxes.append((west, south, east, north))
    if not boxes:
        raise ValueError("no layer with a geometry to fit the map's view to (expected at least the basin)")
    west = min(b[0] for b in boxes)
    south = min(b[1] for b in boxes)
    east = max(b[2] for b in boxes)
    north = max(b[3] for b in boxes)
    pad_x = max((east - west) * pad_fraction, MIN_PAD_DEG)
    pad_y = max((north - south) * pad_fraction, MIN_PAD_DEG)
    return [
        [max(south - pad_y, -85.0), max(west - pad_x, -180.0)],
        [min(north + pad_y, 85.0), min(east + pad_x, 180.0)],
    ]


VIEW_JS = f"""
(function () {{
  "use strict";
  window.ph = window.ph || {{}};
  // Start the legend collapsed where it would take much of a small screen.
  ph.initLegend = function () {{
    var legend = document.getElementById("ph-legend");
    if (legend && (window.innerWidth < {NARROW_PX} || window.innerHeight < {LOW_PX})) {{
      legend.open = false;
    }}
  }};
  // Fit the map to `bounds`, kept clear of the boxes floating over its right side and bottom.
  ph.fitView = function (map, bounds) {{
    var area = map.getContainer().getBoundingClientRect();
    var right = 0, bottom = 0, top = 0;
    var boxes = [document.getElementById("ph-legend"),
                 map.getContainer().querySelector(".leaflet-top.leaflet-right .leaflet-control-layers")];
    boxes.forEach(function (box) {{
      if (!box) {{ return; }}
      var r = box.getBoundingClientRect();
      if (r.width > 0 && r.left > area.left + area.width / 2) {{
        right = Math.max(right, area.right - r.left);
      }}
    }});
    var footer = document.querySelector(".ph-footer");
    if (footer) {{
      var f = footer.getBoundingClientRect();
      if (f.height > 0) {{ bottom = Math.max(bottom, area.bottom - f.top); }}
    }}
    var title = document.querySelector(".ph-title");
    if (title) {{
      var t = title.getBoundingClientRect();
      if (t.height > 0) {{ top = Math.max(top, t.bottom - area.top); }}
    }}
    var gap = {GAP_PX};
    right = Math.min(right + gap, area.width / 2);
    bottom = Math.min(bottom + gap, area.height / 3);
    top = Math.min(top + gap, area.height / 3);
    map.fitBounds(bounds, {{
      paddingTopLeft: [gap, top], paddingBottomRight: [right, bottom], animate: false
    }});
  }};
}})();
"""
"""The page's view and legend runtime (``ph.initLegend``, ``ph.fitView``)."""


def fit_view_js(map_name: str, bounds: Bounds) -> str:
    """The script that, once the page has loaded, closes the legend on a small screen and fits the view."""
    return (
        'window.addEventListener("load", function () { ph.initLegend(); '
        f"ph.fitView({map_name}, {json.dumps(bounds)}); }});"
    )
