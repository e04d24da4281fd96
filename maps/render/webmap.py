"""Render a hotspot result directory as one self-contained interactive map (an offline HTML file).

The page must work with no network at all: Leaflet's JavaScript, its CSS and the images that CSS
refers to are inlined from the installed ``xstatic-leaflet`` package, and folium's default CDN links
(jQuery, Bootstrap, Font Awesome, ...) are dropped. Nothing in the page uses them: popups and
tooltips are bound by a few lines of our own JavaScript, and legends are plain HTML and CSS.

The default base layer is a hillshade of the conditioned DEM, computed here and embedded as a PNG;
an OpenStreetMap tile layer is offered as an alternative and simply stays grey offline.

Every piece of text read from the result files (names, drivers, units, image names, provenance) is
HTML-escaped before it reaches the page, so a barrier named ``<script>...`` shows as text.

Overlays, by their names in the layer control: :data:`LAYER_LEAKAGE`, :data:`LAYER_ACCUMULATION`,
:data:`LAYER_LEAKAGE_HOTSPOTS`, :data:`LAYER_DENSITY`, :data:`LAYER_RIVERS`, :data:`LAYER_BARRIERS`,
:data:`LAYER_BASIN` and :data:`LAYER_SURVEY`; base layers :data:`LAYER_BASEMAP` and :data:`LAYER_OSM`.
Any vector layer but ``basin`` may be missing from ``hotspots.gpkg``; it is then left out.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import numpy.typing as npt
from folium.template import Template
from folium.utilities import JsCode
from rasterio.enums import Resampling
from shapely.geometry import mapping

from plastic_hotspots.geoio import atomic_path
from plastic_hotspots.maps.errors import RenderError
from plastic_hotspots.maps.io.results import (
    PROVENANCE_FILE,
    RASTERS,
    VECTORS,
    check_result_dir,
    read_json,
    read_result_layers,
)
from plastic_hotspots.maps.render import layers as maplayers
from plastic_hotspots.maps.render.columns import RUNTIME_JS, ColumnData
from plastic_hotspots.maps.render.rasters import (
    LEAKAGE_CMAP,
    Bounds,
    basemap_rgba,
    cell_size_m,
    hillshade,
    leakage_rgba,
    png_data_uri,
    read_raster,
    to_web_mercator,
)
from plastic_hotspots.maps.render.text import (
    Legend,
    as_number,
    as_text,
    fmt,
    footer_html,
    percent,
    popup_content,
    ramp_css,
    title_html,
)
from plastic_hotspots.maps.render.view import VIEW_JS, fit_view_js, view_bounds

FloatArray = npt.NDArray[np.float64]


LAYER_BASEMAP = "Basemap (offline)"
LAYER_OSM = "OpenStreetMap (online)"
LAYER_LEAKAGE = "Leakage-source index"
LAYER_ACCUMULATION = "Accumulation hotspots"
LAYER_LEAKAGE_HOTSPOTS = "Leakage hotspots"
LAYER_RIVERS = "Rivers"
LAYER_BARRIERS = "Barriers"
LAYER_DENSITY = maplayers.LAYER_DENSITY
LAYER_GI = maplayers.LAYER_GI
LAYER_CHANGE = maplayers.LAYER_CHANGE
LAYER_SURVEY = maplayers.LAYER_SURVEY
LAYER_BASIN = "Basin and sub-basins"
LAYER_ADMIN = "Administrative boundaries"

VECTOR_LAYERS = tuple(name for name, layer in VECTORS.items() if layer.features != "none")
"""The layers of ``hotspots.gpkg`` the map draws from: every one with features."""

ACCUMULATION_COLOUR = "#6a3d9a"
LEAKAGE_COLOUR = "#d7301f"
RIVER_COLOUR = "#2b7bba"
SURVEY_COLOUR = "#737373"
BARRIER_KINDS: dict[str, tuple[str, str]] = {  # kind -> (letter, colour)
    "dam": ("D", "#54278f"),
    "weir": ("W", "#08519c"),
    "bridge": ("B", "#a63603"),
    "port": ("P", "#006d2c"),
}
UNKNOWN_BARRIER = ("?", "#525252")

# Panes keep the drawing order fixed however layers are toggled: rasters under areas under lines
# under points. Leaflet's own panes: tiles 200, overlays 400, markers 600.
PANE_BASEMAP = "ph-basemap"
PANE_RASTER = "ph-raster"
PANE_AREAS = "ph-areas"
PANE_LINES = "ph-lines"
PANE_POINTS = "ph-points"

# Popups travel as [title, [[label, value], ...]] (see popup_content: every string already
# HTML-escaped in Python) and are assembled into a table here; that keeps the embedded data small.
_BIND_POPUPS = JsCode(
    """function(feature, layer) {
        var p = feature.properties || {};
        if (p.popup) {
            var table = '<table class="ph-popup"><caption>' + p.popup[0] + '</caption>';
            p.popup[1].forEach(function(row) {
                table += '<tr><th>' + row[0] + '</th><td>' + row[1] + '</td></tr>';
            });
            layer.bindPopup(table + '</table>', {maxWidth: 360});
        }
        if (p.tooltip) { layer.bindTooltip(p.tooltip); }
    }"""
)
_CIRCLE_MARKER = JsCode(
    f"""function(feature, latlng) {{
        return L.circleMarker(latlng, Object.assign({{pane: "{PANE_POINTS}"}}, feature.properties.style));
    }}"""
)
_BARRIER_MARKER = JsCode(
    """function(feature, latlng) {
        return L.marker(latlng, {
            icon: L.divIcon({className: "ph-barrier", html: feature.properties.icon, iconSize: [20, 20]}),
            keyboard: false
        });
    }"""
)

_PAGE_CSS = """
.ph-box { position: absolute; z-index: 1000; background: rgba(255, 255, 255, 0.93);
  border-radius: 5px; box-shadow: 0 1px 5px rgba(0, 0, 0, 0.35); padding: 6px 10px;
  font: 12px/1.4 "Helvetica Neue", Arial, Helvetica, sans-serif; color: #222; }
.ph-title { top: 10px; left: 54px; max-width: 45%; }
.ph-title h1 { font-size: 17px; margin: 0; }
.ph-title div { color: #555; }
.ph-legend { bottom: 34px; right: 10px; max-height: 55%; overflow-y: auto; max-width: 300px; }
.ph-legend h2 { font-size: 13px; margin: 0; }
.ph-legend > summary { cursor: pointer; list-style: none; user-select: none; }
.ph-legend > summary::-webkit-details-marker { display: none; }
.ph-legend > summary h2 { display: inline; }
.ph-legend > summary::before { content: "\\25B8"; display: inline-block; width: 14px; color: #555; }
.ph-legend[open] > summary::before { content: "\\25BE"; }
.ph-legend[open] > summary { margin-bottom: 4px; }
.ph-legend .ph-entry { margin: 3px 0; }
.ph-legend .ph-label { font-weight: bold; }
.ph-legend .ph-note { color: #555; font-size: 11px; }
.ph-legend .ph-ramp { height: 10px; width: 180px; border: 1px solid #999; margin-top: 2px; }
.ph-legend .ph-ends { width: 182px; display: flex; justify-content: space-between; font-size: 11px; }
.ph-swatch { display: inline-block; width: 14px; height: 10px; vertical-align: middle;
  margin-right: 4px; border: 1px solid #666; }
.ph-dot { display: inline-block; border-radius: 50%; vertical-align: middle; margin-right: 4px;
  border: 1px solid #333; }
.ph-line { display: inline-block; width: 18px; vertical-align: middle; margin-right: 4px; }
.leaflet-ph-areas-pane > canvas { pointer-events: none !important; }
.ph-unsurveyed { background: #d9d9d9; border: 1px dashed #8c8c8c; }
.ph-filter { top: 80px; left: 54px; }
.ph-filter h2 { font-size: 13px; margin: 0 0 4px 0; }
.ph-filter label { display: block; margin: 2px 0; }
.ph-thumb { display: block; max-width: 320px; margin-top: 6px; border: 1px solid #999; }
.ph-footer { bottom: 8px; left: 50%; transform: translateX(-50%); padding: 3px 8px; font-size: 11px;
  color: #444; max-width: 45%; }
.ph-barrier span { display: block; width: 18px; height: 18px; line-height: 18px; text-align: center;
  color: #fff; font: bold 11px/18px Arial, sans-serif; border: 1px solid #fff; border-radius: 3px;
  box-shadow: 0 0 2px #000; }
.ph-crisp { image-rendering: pixelated; }
.ph-popup th { text-align: left; padding-right: 8px; font-weight: normal; color: #555; }
.ph-popup td { font-weight: bold; }
.ph-popup caption { text-align: left; font-weight: bold; padding-bottom: 3px; }
"""


def render_map(
    result_dir: Path, out_html: Path, *, title: str = "Plastic hotspots", before: Path | None = None
) -> Path:
    """Write a self-contained interactive map of a hotspot result directory.

    The page needs no network: Leaflet and every image are embedded. It is written to a temporary
    file beside ``out_html`` and renamed into place.

    Args:
        result_dir: A directory written by ``plastic-hotspots hotspots`` (``dem.tif``,
            ``leakage_index.tif``, ``hotspots.gpkg``, ``provenance.json``).
        out_html: The HTML file to write; its folder is created if needed.
        title: Title shown on the map and as the page title.
        before: An earlier result directory of the same basin (same config, so the same grid): its
            observed density is compared with this one's, cell by cell.

    Returns:
        ``out_html``.

    Raises:
        RenderError: The directory, ``hotspots.gpkg`` or its ``basin`` layer is missing, or a file
            in it cannot be read.
    """
    result_dir, out_html = Path(result_dir), Path(out_html)
    layers = read_vector_layers(check_result_dir(result_dir))
    basin = layers["basin"]
    fmap, page = _blank_map(basin, title)
    legend = Legend()
    _add_base_layers(fmap, RASTERS["dem"].path(result_dir), basin)
    _add_leakage_raster(fmap, RASTERS["leakage_index"].path(result_dir), legend)
    _add_admin(fmap, layers.get("admin_boundaries"), legend)
    _add_basin(fmap, basin, layers.get("subbasins"), legend)
    provenance = read_json(PROVENANCE_FILE.path(result_dir))
    _add_density(fmap, layers.get("observed_density"), legend, explained=_layers_explain_survey(provenance))
    if before is not None:
        _add_change(fmap, before, layers, legend)
    _add_rivers(fmap, layers.get("rivers"), legend)
    survey = _add_survey(fmap, layers, legend)
    _add_barriers(fmap, layers.get("barriers"), legend)
    _add_hotspots(fmap, layers.get("accumulation_hotspots"), kind="accumulation", legend=legend)
    _add_hotspots(fmap, layers.get("leakage_hotspots"), kind="leakage", legend=legend)
    _add_controls(fmap, page, basin, layers)
    _add_boxes(page, title, basin, legend, _filters(survey, layers.get("observed_density")))
    _add_footer(page, provenance)
    _write_page(page, out_html)
    return out_html


# --- the page -------------------------------------------------------------------------------------


def _blank_map(basin: gpd.GeoDataFrame, title: str) -> tuple[folium.Map, folium.Figure]:
    """A map centred on the basin in an offline page with our CSS, runtime and panes; the map and page."""
    west, south, east, north = (float(v) for v in basin.total_bounds)
    fmap = folium.Map(
        location=[(south + north) / 2, (west + east) / 2],
        zoom_start=12,
        tiles=None,
        control_scale=True,
    )
    fmap.options["max_zoom"] = 19  # the map has no tile layer to set a limit when offline
    page = _make_offline(fmap)
    page.title = html.escape(title)
    page.header.add_child(folium.Element(f"<style>{_PAGE_CSS}</style>"), name="ph_css")
    page.header.add_child(folium.Element(f"<script>{RUNTIME_JS}</script>"), name="ph_runtime")
    for name, z_index in (
        (PANE_BASEMAP, 150),
        (PANE_RASTER, 350),
        (PANE_AREAS, 410),
        (PANE_LINES, 420),
        (PANE_POINTS, 430),
    ):
        folium.map.CustomPane(
            name, z_index=z_index, pointer_events=name not in {PANE_BASEMAP, PANE_RASTER}
        ).add_to(fmap)
    return fmap, page


def _add_controls(
    fmap: folium.Map, page: folium.Figure, basin: gpd.GeoDataFrame, layers: Mapping[str, gpd.GeoDataFrame]
) -> None:
    """The layer control, and the view fitted to the basin and the survey, clear of the legend.

    See :mod:`plastic_hotspots.maps.render.view`.
    """
    folium.LayerControl(position="topright", collapsed=False).add_to(fmap)
    bounds: Bounds = view_bounds([basin, layers.get("survey_points"), layers.get("observed_density")])
    fmap.fit_bounds(bounds)
    page.header.add_child(folium.Element(f"<script>{VIEW_JS}</script>"), name="ph_view_runtime")
    page.script.add_child(folium.Element(fit_view_js(fmap.get_name(), bounds)), name="ph_view_init")


def _filters(survey: maplayers.SurveyLayer | None, cells: gpd.GeoDataFrame | None) -> str:
    """The filter box of the survey photos and density classes ("" when there is nothing to filter)."""
    density_classes = maplayers.class_columns(cells) if cells is not None else []
    return maplayers.filter_box_html(survey, density_classes)


def _add_boxes(
    page: folium.Figure, title: str, basin: gpd.GeoDataFrame, legend: Legend, filters: str
) -> None:
    """The title, the legend and the filter box (with what starts it) on the page."""
    basin_name = as_text(basin.iloc[0].get("name")) if "name" in basin.columns else ""
    page.html.add_child(folium.Element(title_html(title, basin_name)), name="ph_title")
    page.html.add_child(folium.Element(legend.to_html()), name="ph_legend")
    if filters:
        page.html.add_child(folium.Element(filters), name="ph_filter")
        page.script.add_child(
            folium.Element('window.addEventListener("load", ph.initFilters);'), name="ph_filter_init"
        )


def _add_footer(page: folium.Figure, provenance: Mapping[str, Any] | None) -> None:
    """The footer: which version of the code made the result, and when."""
    page.html.add_child(folium.Element(footer_html(provenance)), name="ph_footer")


def _write_page(page: folium.Figure, out_html: Path) -> None:
    """The page rendered to ``out_html`` (atomically)."""
    text = page.render()
    with atomic_path(out_html) as tmp:
        tmp.write_text(text, encoding="utf-8")


class ColumnLayer(folium.map.Layer):
    """A layer drawn by the page's runtime from columnar data.

    See :mod:`plastic_hotspots.maps.render.columns`.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = ph.{{ this.kind }}({{ this.data|tojson }}, {{ this.opts|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, column: ColumnData) -> None:
        super().__init__(name=column.name, overlay=True, control=True, show=True)
        self._name = "ColumnLayer"
        self.kind = column.kind
        self.data = column.data
        self.opts = column.opts


def _layers_explain_survey(provenance: Mapping[str, Any] | None) -> bool:
    """False where the run's calibration found that the layers do not explain the survey."""
    parameters = (provenance or {}).get("parameters") or {}
    return parameters.get("calibration.explains_survey") is not False


def _add_density(
    fmap: folium.Map, cells: gpd.GeoDataFrame | None, legend: Legend, *, explained: bool = True
) -> None:
    """The observed density of the survey cells, and their Gi* hot and cold spots where computed.

    Where the layers do not explain the survey (``explained`` False), the legend says so.
    """
    if cells is None:
        return
    ColumnLayer(maplayers.density_layer(cells, legend, PANE_AREAS, explained=explained)).add_to(fmap)
    gi = maplayers.gi_layer(cells, legend, PANE_AREAS)
    if gi is not None:
        ColumnLayer(gi).add_to(fmap)


def _add_survey(
    fmap: folium.Map, layers: Mapping[str, gpd.GeoDataFrame], legend: Legend
) -> maplayers.SurveyLayer | None:
    """The survey photos with their detections, where the result has them; the layer, or None."""
    if "survey_points" not in layers:
        return None
    # Photos share the cells' canvas (see plastic_hotspots.maps.render.columns): drawn above them,
    # clickable through it.
    survey = maplayers.survey_layer(layers["survey_points"], layers.get("detections"), legend, PANE_AREAS)
    ColumnLayer(survey.layer).add_to(fmap)
    return survey


def _add_change(fmap: folium.Map, before: Path, layers: dict[str, gpd.GeoDataFrame], legend: Legend) -> None:
    earlier_layers = read_vector_layers(check_result_dir(Path(before)))
    after, earlier = layers.get("observed_density"), earlier_layers.get("observed_density")
    if after is None or earlier is None:
        raise RenderError(
            "both result directories need an observed density to compare surveys",
            hint="run `plastic-hotspots hotspots` with `observations` in both basin configs",
        )
    labels = (
        _survey_label(earlier_layers.get("survey_points"), Path(before).name),
        _survey_label(layers.get("survey_points"), "this survey"),
    )
    change = maplayers.change_layer(earlier, after, labels, legend, PANE_AREAS)
    if change is not None:
        ColumnLayer(change).add_to(fmap)


def _survey_label(points: gpd.GeoDataFrame | None, fallback: str) -> str:
    """The survey's dates (first to last photo) where known, else ``fallback``."""
    if points is not None and "captured_at" in points.columns:
        days = sorted(d for d in points["captured_at"].fillna("").astype(str).str.slice(0, 10) if d)
        if days:
            return days[0] if days[0] == days[-1] else f"{days[0]} to {days[-1]}"
    return fallback


# --- inputs -------------------------------------------------------------------------------------


def read_vector_layers(gpkg: Path) -> dict[str, gpd.GeoDataFrame]:
    """The map's layers of ``hotspots.gpkg``.

    See :func:`plastic_hotspots.maps.io.results.read_result_layers`.
    """
    return read_result_layers(gpkg, VECTOR_LAYERS)


def _add_base_layers(fmap: folium.Map, dem_path: Path, basin: gpd.GeoDataFrame) -> None:
    """The offline basemap (a hillshade of the DEM), then OpenStreetMap as the online alternative."""
    _add_basemap(fmap, dem_path, basin)
    folium.TileLayer(
        tiles="https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        attr="&copy; OpenStreetMap contributors",
        name=LAYER_OSM,
        overlay=False,
        control=True,
        show=False,
        max_zoom=19,
    ).add_to(fmap)


def _add_basemap(fmap: folium.Map, dem_path: Path, basin: gpd.GeoDataFrame) -> None:
    if not dem_path.is_file():
        # No DEM: a pale fill of the basin stands in, so the offline base layer still shows land.
        _geojson_layer(
            [_feature(geom, style=_area_style("#eeeadf", 1.0, "#eeeadf", 0)) for geom in basin.geometry],
            LAYER_BASEMAP,
            pane=PANE_BASEMAP,
            overlay=False,
            interactive=False,
        ).add_to(fmap)
        return
    dem = read_raster(dem_path, Resampling.average)
    cell_x, cell_y = cell_size_m(dem)
    shade = hillshade(dem.values, cell_x, cell_y)
    warped, bounds = to_web_mercator(dem, np.stack([dem.values, shade]), Resampling.bilinear)
    folium.raster_layers.ImageOverlay(
        png_data_uri(basemap_rgba(warped[0], warped[1])),
        bounds=bounds,
        name=LAYER_BASEMAP,
        overlay=False,
        control=True,
        show=True,
        pixelated=False,
        pane=PANE_BASEMAP,
    ).add_to(fmap)


def _add_leakage_raster(fmap: folium.Map, path: Path, legend: Legend) -> None:
    if not path.is_file():
        return
    raster = read_raster(path, Resampling.average)
    warped, bounds = to_web_mercator(raster, raster.values[None, ...], Resampling.nearest)
    rgba, lo, hi = leakage_rgba(warped[0])
    if hi <= 0:
        legend.add(LAYER_LEAKAGE, note="no cell leaks plastic into a waterway")
        return
    folium.raster_layers.ImageOverlay(
        png_data_uri(rgba),
        bounds=bounds,
        name=LAYER_LEAKAGE,
        overlay=True,
        show=True,
        pixelated=False,
        pane=PANE_RASTER,
        class_name="ph-crisp",
    ).add_to(fmap)
    legend.add(
        LAYER_LEAKAGE,
        ramp=ramp_css(LEAKAGE_CMAP),
        ends=(fmt(lo), fmt(hi)),
        note="kg/yr of plastic per cell entering waterways (log scale; clear: none)",
    )


# --- vector layers --------------------------------------------------------------------------------


def _round_coords(obj: Any) -> Any:
    if isinstance(obj, float):
        return round(obj, 6)
    if isinstance(obj, (list, tuple)):
        return [_round_coords(item) for item in obj]
    return obj


def _feature(
    geometry: Any,
    *,
    style: Mapping[str, Any],
    popup: list[Any] | None = None,
    tooltip: str = "",
    icon: str = "",
) -> dict[str, Any]:
    """A GeoJSON feature whose properties hold only already-escaped HTML and style options."""
    geom = dict(mapping(geometry))
    geom["coordinates"] = _round_coords(geom.get("coordinates"))
    properties: dict[str, Any] = {"style": dict(style)}
    if popup:
        properties["popup"] = popup
    if tooltip:
        properties["tooltip"] = tooltip
    if icon:
        properties["icon"] = icon
    return {"type": "Feature", "geometry": geom, "properties": properties}


def _geojson_layer(
    features: Sequence[dict[str, Any]],
    name: str | None,
    *,
    pane: str,
    point_to_layer: JsCode | None = None,
    overlay: bool = True,
    control: bool = True,
    interactive: bool = True,
) -> folium.GeoJson:
    options: dict[str, Any] = {"pane": pane}
    if point_to_layer is not None:
        options["point_to_layer"] = point_to_layer
    if not interactive:
        options["interactive"] = False
    return folium.GeoJson(
        {"type": "FeatureCollection", "features": list(features)},
        name=name,
        overlay=overlay,
        control=control,
        show=True,
        on_each_feature=_BIND_POPUPS if interactive else None,
        **options,
    )


def _area_style(fill: str, fill_opacity: float, colour: str, weight: float, dash: str = "") -> dict[str, Any]:
    style: dict[str, Any] = {
        "color": colour,
        "weight": weight,
        "fillColor": fill,
        "fillOpacity": fill_opacity,
        "fill": fill_opacity > 0,
    }
    if dash:
        style["dashArray"] = dash
    return style


def _records(frame: gpd.GeoDataFrame) -> list[tuple[dict[str, Any], Any]]:
    rows = frame.drop(columns=frame.geometry.name).to_dict("records")
    return [(dict(row), geom) for row, geom in zip(rows, frame.geometry, strict=True)]


def _add_basin(
    fmap: folium.Map, basin: gpd.GeoDataFrame, subbasins: gpd.GeoDataFrame | None, legend: Legend
) -> None:
    group = folium.FeatureGroup(name=LAYER_BASIN, show=True)
    totals: list[tuple[str, str]] = []
    if subbasins is not None:
        for column, label in (("leakage_kg_yr", "Leakage"), ("accumulation_kg_yr", "Accumulation")):
            if column in subbasins.columns:
                totals.append((f"{label} (all sub-basins)", fmt(subbasins[column].sum(), "kg/yr")))
        features = []
        for row, geom in _records(subbasins):
            name = as_text(row.get("name")) or f"Sub-basin {as_text(row.get('subbasin'))}"
            rows = [
                ("Sub-basin", as_text(row.get("subbasin"))),
                ("Leakage", fmt(row.get("leakage_kg_yr"), "kg/yr")),
                ("Accumulation", fmt(row.get("accumulation_kg_yr"), "kg/yr")),
            ]
            if "area_km2" in row:
                rows.append(("Area", fmt(row.get("area_km2"), "km²")))
            features.append(
                _feature(
                    geom,
                    style=_area_style("#ffffff", 0.01, "#555555", 1.2, "4 4"),
                    popup=popup_content(name, rows),
                    tooltip=html.escape(name),
                )
            )
        _geojson_layer(features, None, pane=PANE_AREAS, control=False).add_to(group)
    basin_features = []
    for row, geom in _records(basin):
        name = as_text(row.get("name")) or "Basin"
        rows = [("Area", fmt(row.get("area_km2"), "km²"))] if "area_km2" in row else []
        basin_features.append(
            _feature(
                geom,
                style=_area_style("#ffffff", 0.0, "#222222", 2.5),
                popup=popup_content(name, rows + totals),
            )
        )
    _geojson_layer(basin_features, None, pane=PANE_AREAS, control=False).add_to(group)
    group.add_to(fmap)
    legend.add(
        LAYER_BASIN,
        symbol='<span class="ph-line" style="border-top: 3px solid #222"></span>'
        '<span class="ph-line" style="border-top: 2px dashed #555"></span>',
        note="basin outline; sub-basins dashed (click for totals)",
    )


def _add_admin(fmap: folium.Map, units: gpd.GeoDataFrame | None, legend: Legend) -> None:
    if units is None:
        return
    features = []
    for row, geom in _records(units):
        name = as_text(row.get("name"))
        style = {"color": "#7a5c99", "weight": 1.4, "dashArray": "8 4 2 4", "fill": False}
        features.append(_feature(geom, style=style, tooltip=html.escape(name)))
    _geojson_layer(features, LAYER_ADMIN, pane=PANE_LINES).add_to(fmap)
    legend.add(
        LAYER_ADMIN,
        symbol='<span class="ph-line" style="border-top: 2px dashed #7a5c99"></span>',
        note=f"{len(units)} administrative units (hover for the name)",
    )


def _add_rivers(fmap: folium.Map, rivers: gpd.GeoDataFrame | None, legend: Legend) -> None:
    if rivers is None:
        return
    features = []
    for row, geom in _records(rivers):
        order = as_number(row.get("order"))
        weight = 1.0 + 0.9 * (max(order, 1.0) - 1.0) if order is not None else 1.5
        features.append(
            _feature(
                geom,
                style={"color": RIVER_COLOUR, "weight": min(weight, 8.0), "opacity": 0.85},
                tooltip=html.escape(f"Stream order {fmt(order)}"),
            )
        )
    _geojson_layer(features, LAYER_RIVERS, pane=PANE_LINES).add_to(fmap)
    legend.add(
        LAYER_RIVERS,
        symbol=f'<span class="ph-line" style="border-top: 3px solid {RIVER_COLOUR}"></span>',
        note="line width by stream order",
    )


def _add_barriers(fmap: folium.Map, barriers: gpd.GeoDataFrame | None, legend: Legend) -> None:
    if barriers is None:
        return
    features = []
    kinds_seen: dict[str, tuple[str, str]] = {}
    for row, geom in _records(barriers):
        kind = as_text(row.get("kind"))
        letter, colour = BARRIER_KINDS.get(kind.lower(), UNKNOWN_BARRIER)
        kinds_seen[kind.lower() if kind.lower() in BARRIER_KINDS else "other"] = (letter, colour)
        name = as_text(row.get("name")) or "Barrier"
        rows = [
            ("Kind", kind or "unknown"),
            ("Pass factor", fmt(row.get("pass_factor"))),
            ("Retained", fmt(row.get("retained_kg_yr"), "kg/yr")),
        ]
        features.append(
            _feature(
                geom.centroid if geom.geom_type != "Point" else geom,
                style={},
                popup=popup_content(name, rows),
                tooltip=html.escape(f"{name} ({kind or 'unknown'})"),
                icon=f'<span style="background:{colour}">{letter}</span>',
            )
        )
    _geojson_layer(features, LAYER_BARRIERS, pane=PANE_POINTS, point_to_layer=_BARRIER_MARKER).add_to(fmap)
    symbols = " ".join(
        f'<span class="ph-swatch" style="background:{colour};width:12px;text-align:center;color:#fff;'
        f'font-size:9px;line-height:10px">{letter}</span>{html.escape(kind)}'
        for kind, (letter, colour) in sorted(kinds_seen.items())
    )
    legend.add(LAYER_BARRIERS, symbol="", note_html=symbols)


def _add_hotspots(fmap: folium.Map, spots: gpd.GeoDataFrame | None, *, kind: str, legend: Legend) -> None:
    if spots is None:
        return
    colour = LEAKAGE_COLOUR if kind == "leakage" else ACCUMULATION_COLOUR
    name = LAYER_LEAKAGE_HOTSPOTS if kind == "leakage" else LAYER_ACCUMULATION
    label = "Leakage hotspot" if kind == "leakage" else "Accumulation hotspot"
    records = _records(spots)
    values = [v for row, _ in records if (v := as_number(row.get("value"))) is not None and v > 0]
    top = max(values) if values else 0.0
    features = []
    for row, geom in records:
        value = as_number(row.get("value"))
        radius = 4.0 + 14.0 * math.sqrt(value / top) if value is not None and value > 0 and top > 0 else 4.0
        unit = as_text(row.get("unit")) or "kg/yr"
        rank = as_text(row.get("rank"))
        rows = [
            ("Rank", rank),
            ("Value", fmt(value, unit)),
            ("Main driver", as_text(row.get("driver")) or "n/a"),
        ]
        if kind == "leakage":
            rows += [
                ("Population", fmt(row.get("population"))),
                ("Collection rate", percent(row.get("collection_rate"))),
                ("P(reach river)", fmt(row.get("p_land"))),
            ]
        features.append(
            _feature(
                geom.centroid if geom.geom_type != "Point" else geom,
                style={
                    "radius": round(radius, 1),
                    "color": "#ffffff",
                    "weight": 1.5,
                    "fillColor": colour,
                    "fillOpacity": 0.8,
                },
                popup=popup_content(f"{label} #{rank}", rows),
                tooltip=html.escape(f"{label} #{rank}: {fmt(value, unit)}"),
            )
        )
    _geojson_layer(features, name, pane=PANE_POINTS, point_to_layer=_CIRCLE_MARKER).add_to(fmap)
    legend.add(
        name,
        symbol=f'<span class="ph-dot" style="width:12px;height:12px;background:{colour}"></span>',
        note=f"area by value (largest {fmt(top, 'kg/yr')}); click for the driver",
    )


# --- text -----------------------------------------------------------------------------------------


# --- offline Leaflet ------------------------------------------------------------------------------


def _leaflet_assets() -> tuple[str, str]:
    """Leaflet's JavaScript and CSS from ``xstatic-leaflet``, the CSS's images inlined as data URIs."""
    import xstatic.pkg.leaflet as xleaflet

    base = Path(xleaflet.BASE_DIR)
    try:
        js = (base / "leaflet.js").read_text(encoding="utf-8")
        css = (base / "leaflet.css").read_text(encoding="utf-8")
    except OSError as exc:
        raise RenderError(
            f"Leaflet is not installed where xstatic-leaflet says ({base}): {exc}",
            hint="reinstall the package: `pip install --force-reinstall xstatic-leaflet`",
        ) from exc
    for image in sorted((base / "images").glob("*.png")):
        uri = "data:image/png;base64," + base64.b64encode(image.read_bytes()).decode("ascii")
        css = css.replace(f"url(images/{image.name})", f"url({uri})")
    js = "\n".join(line for line in js.splitlines() if not line.startswith("//# sourceMappingURL="))
    return js.replace("</script", "<\\/script"), css.replace("</style", "<\\/style")


def _make_offline(fmap: folium.Map) -> folium.Figure:
    """Drop folium's CDN links from the page and inline Leaflet instead; return the page."""
    fmap.default_js = []
    fmap.default_css = []
    js, css = _leaflet_assets()
    root = fmap.get_root()
    if not isinstance(root, folium.Figure):  # folium.Map always makes its own Figure
        raise RenderError("folium did not give the map a page to live in", hint="check the folium version")
    root.header.add_child(folium.Element(f"<style>{css}</style>"), name="leaflet_css_inline")
    root.header.add_child(folium.Element(f"<script>{js}</script>"), name="leaflet_js_inline")
    return root
