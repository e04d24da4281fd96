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
import io
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pyogrio
import rasterio
from folium.utilities import JsCode
from matplotlib import colormaps
from matplotlib import image as mpimage
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.transform import Affine
from rasterio.warp import calculate_default_transform, reproject, transform_bounds
from shapely.geometry import mapping

from maps.errors import RenderError
from plastic_hotspots.geoio import atomic_path

FloatArray = npt.NDArray[np.float64]
Bounds = list[list[float]]  # [[south, west], [north, east]], as Leaflet wants them

HOTSPOTS_COMMAND = "plastic-hotspots hotspots --config basin.yaml --out DIR"

LAYER_BASEMAP = "Basemap (offline)"
LAYER_OSM = "OpenStreetMap (online)"
LAYER_LEAKAGE = "Leakage-source index"
LAYER_ACCUMULATION = "Accumulation hotspots"
LAYER_LEAKAGE_HOTSPOTS = "Leakage hotspots"
LAYER_DENSITY = "Observed density"
LAYER_RIVERS = "Rivers"
LAYER_BARRIERS = "Barriers"
LAYER_BASIN = "Basin and sub-basins"
LAYER_SURVEY = "Survey photos"

VECTOR_LAYERS = (
    "basin",
    "subbasins",
    "rivers",
    "barriers",
    "leakage_hotspots",
    "accumulation_hotspots",
    "observed_density",
    "survey_points",
)

MAX_SURVEY_POINTS = 5000
"""More survey photos than this are shown as a random sample of this size (the legend says so)."""

MAX_IMAGE_PIXELS = 1600
"""Longest side, in pixels, of the rasters embedded in the page (larger ones are read decimated)."""

LAND_LOW = np.array([0.90, 0.93, 0.85])  # pale green-grey for the lowest ground
LAND_HIGH = np.array([0.95, 0.91, 0.83])  # pale tan for the highest
LEAKAGE_CMAP = "YlOrRd"
DENSITY_CMAP = "viridis"
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
.ph-legend h2 { font-size: 13px; margin: 0 0 4px 0; }
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
.ph-hatch { background: repeating-linear-gradient(45deg, #9a9a9a 0 2px, #e4e4e4 2px 5px); }
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

# An SVG fill pattern for cells with too few observations to estimate a rate ("not surveyed").
_HATCH_SVG = """<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>
<pattern id="ph-hatch" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)">
<rect width="6" height="6" fill="#e4e4e4"/>
<line x1="0" y1="0" x2="0" y2="6" stroke="#9a9a9a" stroke-width="2.5"/>
</pattern></defs></svg>"""


def render_map(result_dir: Path, out_html: Path, *, title: str = "Plastic hotspots") -> Path:
    """Write a self-contained interactive map of a hotspot result directory.

    The page needs no network: Leaflet and every image are embedded. It is written to a temporary
    file beside ``out_html`` and renamed into place.

    Args:
        result_dir: A directory written by ``plastic-hotspots hotspots`` (``dem.tif``,
            ``leakage_index.tif``, ``hotspots.gpkg``, ``provenance.json``).
        out_html: The HTML file to write; its folder is created if needed.
        title: Title shown on the map and as the page title.

    Returns:
        ``out_html``.

    Raises:
        RenderError: The directory, ``hotspots.gpkg`` or its ``basin`` layer is missing, or a file
            in it cannot be read.
    """
    result_dir = Path(result_dir)
    out_html = Path(out_html)
    gpkg = _check_result_dir(result_dir)
    layers = read_vector_layers(gpkg)
    basin = layers["basin"]
    west, south, east, north = (float(v) for v in basin.total_bounds)
    basin_bounds: Bounds = [[south, west], [north, east]]

    fmap = folium.Map(
        location=[(south + north) / 2, (west + east) / 2],
        zoom_start=12,
        tiles=None,
        control_scale=True,
    )
    fmap.options["max_zoom"] = 19  # the map has no tile layer to set a limit when offline
    root = _make_offline(fmap)
    root.title = html.escape(title)
    root.header.add_child(folium.Element(f"<style>{_PAGE_CSS}</style>"), name="ph_css")
    root.html.add_child(folium.Element(_HATCH_SVG), name="ph_hatch")
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

    legend = Legend()
    _add_basemap(fmap, result_dir / "dem.tif", basin)
    folium.TileLayer(
        tiles="https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        attr="&copy; OpenStreetMap contributors",
        name=LAYER_OSM,
        overlay=False,
        control=True,
        show=False,
        max_zoom=19,
    ).add_to(fmap)
    _add_leakage_raster(fmap, result_dir / "leakage_index.tif", legend)
    _add_basin(fmap, basin, layers.get("subbasins"), legend)
    _add_density(fmap, layers.get("observed_density"), legend)
    _add_rivers(fmap, layers.get("rivers"), legend)
    _add_survey_points(fmap, layers.get("survey_points"), legend)
    _add_barriers(fmap, layers.get("barriers"), legend)
    _add_hotspots(fmap, layers.get("accumulation_hotspots"), kind="accumulation", legend=legend)
    _add_hotspots(fmap, layers.get("leakage_hotspots"), kind="leakage", legend=legend)
    folium.LayerControl(position="topright", collapsed=False).add_to(fmap)
    fmap.fit_bounds(basin_bounds)

    basin_name = _text(basin.iloc[0].get("name")) if "name" in basin.columns else ""
    root.html.add_child(folium.Element(_title_html(title, basin_name)), name="ph_title")
    root.html.add_child(folium.Element(legend.to_html()), name="ph_legend")
    root.html.add_child(
        folium.Element(_footer_html(_read_provenance(result_dir / "provenance.json"))), name="ph_footer"
    )

    page = root.render()
    with atomic_path(out_html) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out_html


# --- inputs -------------------------------------------------------------------------------------


def _check_result_dir(result_dir: Path) -> Path:
    if not result_dir.is_dir():
        raise RenderError(
            f"result directory not found: {result_dir}",
            hint=f"write it with `{HOTSPOTS_COMMAND}`, then pass that DIR",
        )
    gpkg = result_dir / "hotspots.gpkg"
    if not gpkg.is_file():
        raise RenderError(
            f"{result_dir} has no hotspots.gpkg; it is not a hotspot result directory",
            hint=f"write it with `{HOTSPOTS_COMMAND}`, then pass that DIR",
        )
    return gpkg


def read_vector_layers(gpkg: Path) -> dict[str, gpd.GeoDataFrame]:
    """Read the known, non-empty layers of ``hotspots.gpkg`` in EPSG:4326.

    Args:
        gpkg: Path of ``hotspots.gpkg``.

    Returns:
        Layer name to frame; absent or empty layers (and rows without geometry) are left out.

    Raises:
        RenderError: The file cannot be read, or has no usable ``basin`` layer.
    """
    try:
        present = {str(row[0]) for row in pyogrio.list_layers(gpkg)}
    except Exception as exc:  # pyogrio raises several unrelated types for unreadable files
        raise RenderError(
            f"cannot read {gpkg}: {exc}", hint=f"write it again with `{HOTSPOTS_COMMAND}`"
        ) from exc
    layers: dict[str, gpd.GeoDataFrame] = {}
    for name in VECTOR_LAYERS:
        if name not in present:
            continue
        try:
            frame = gpd.read_file(gpkg, layer=name, engine="pyogrio")
        except Exception as exc:
            raise RenderError(
                f"cannot read layer {name!r} of {gpkg}: {exc}",
                hint=f"write it again with `{HOTSPOTS_COMMAND}`",
            ) from exc
        if "geometry" not in frame.columns or len(frame) == 0:
            continue
        frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
        if len(frame) == 0:
            continue
        if frame.crs is None:
            frame = frame.set_crs("EPSG:4326")
        elif frame.crs.to_epsg() != 4326:
            frame = frame.to_crs("EPSG:4326")
        layers[name] = frame.reset_index(drop=True)
    if "basin" not in layers:
        raise RenderError(
            f"{gpkg} has no basin outline (layer 'basin' is missing or empty)",
            hint=f"write the result directory again with `{HOTSPOTS_COMMAND}`",
        )
    return layers


def _read_provenance(path: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


@dataclass(frozen=True, slots=True)
class _Raster:
    """Band 1 of a raster, decimated to at most :data:`MAX_IMAGE_PIXELS` on its longest side."""

    values: FloatArray
    transform: Affine
    crs: Any


def _read_raster(path: Path, resampling: Resampling) -> _Raster:
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise RenderError(
                    f"{path} has no CRS, so it cannot be placed on the map",
                    hint=f"write the result directory again with `{HOTSPOTS_COMMAND}`",
                )
            scale = max(src.width, src.height) / MAX_IMAGE_PIXELS
            if scale > 1:
                height = max(1, round(src.height / scale))
                width = max(1, round(src.width / scale))
                band = src.read(1, out_shape=(height, width), resampling=resampling, masked=True)
                transform = src.transform @ Affine.scale(src.width / width, src.height / height)
            else:
                band = src.read(1, masked=True)
                transform = src.transform
            values = np.asarray(band.astype(np.float64).filled(np.nan), dtype=np.float64)
            return _Raster(values=values, transform=transform, crs=src.crs)
    except RasterioError as exc:
        raise RenderError(
            f"cannot read {path}: {exc}", hint=f"write the result directory again with `{HOTSPOTS_COMMAND}`"
        ) from exc


# --- rasters ------------------------------------------------------------------------------------


def hillshade(
    dem: FloatArray,
    cell_x: float,
    cell_y: float,
    *,
    azimuth_deg: float = 315.0,
    altitude_deg: float = 45.0,
) -> FloatArray:
    """Shade a north-up DEM lit from ``azimuth_deg`` (clockwise from north) at ``altitude_deg``.

    The slope comes from central differences (``numpy.gradient``); the shade is the cosine of the
    angle between the surface normal and the direction of the light, clipped at 0.

    Args:
        dem: Elevations in metres, row 0 to the north; NaN where unknown.
        cell_x: Cell width in metres.
        cell_y: Cell height in metres (positive).
        azimuth_deg: Direction the light comes from, degrees clockwise from north.
        altitude_deg: Height of the light above the horizon, degrees.

    Returns:
        Shade in ``[0, 1]`` (1: facing the light, flat ground: ``sin(altitude)``); NaN where the DEM is.
    """
    z = np.asarray(dem, dtype=np.float64)
    valid = np.isfinite(z)
    altitude = math.radians(altitude_deg)
    if z.ndim != 2 or min(z.shape) < 2 or not valid.any():
        return np.where(valid, math.sin(altitude), np.nan)
    filled = np.where(valid, z, float(np.nanmean(z)))
    d_row, d_col = np.gradient(filled, cell_y, cell_x)
    dz_east = d_col
    dz_north = -d_row  # rows run north to south
    azimuth = math.radians(azimuth_deg)
    light_east = math.sin(azimuth) * math.cos(altitude)
    light_north = math.cos(azimuth) * math.cos(altitude)
    light_up = math.sin(altitude)
    shade = (-dz_east * light_east - dz_north * light_north + light_up) / np.sqrt(
        1.0 + dz_east**2 + dz_north**2
    )
    return np.where(valid, np.clip(shade, 0.0, 1.0), np.nan)


def _cell_size_m(raster: _Raster) -> tuple[float, float]:
    cell_x, cell_y = abs(raster.transform.a), abs(raster.transform.e)
    if raster.crs.is_geographic:  # degrees: metres at the raster's middle latitude
        rows = raster.values.shape[0]
        lat = raster.transform.f + raster.transform.e * rows / 2
        return cell_x * 111_320.0 * math.cos(math.radians(lat)), cell_y * 110_574.0
    return cell_x, cell_y


def _to_web_mercator(raster: _Raster, bands: FloatArray, resampling: Resampling) -> tuple[FloatArray, Bounds]:
    """Warp ``bands`` (bands, rows, cols on ``raster``'s grid) to EPSG:3857, Leaflet's projection.

    An image overlay is stretched linearly between its corners in the map's projection, so warping
    to Web Mercator (rather than to plain longitude/latitude) makes every pixel land where it belongs.
    The corners are returned in EPSG:4326, as Leaflet wants them.
    """
    n_bands, rows, cols = bands.shape
    left, top = raster.transform.c, raster.transform.f
    right = left + raster.transform.a * cols
    bottom = top + raster.transform.e * rows
    with warnings.catch_warnings():  # rasterio itself still multiplies Affines with `*`
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        dst_transform, width, height = calculate_default_transform(
            raster.crs, "EPSG:3857", cols, rows, left=left, bottom=bottom, right=right, top=top
        )
    out = np.full((n_bands, int(height), int(width)), np.nan, dtype=np.float64)
    reproject(
        source=bands,
        destination=out,
        src_transform=raster.transform,
        src_crs=raster.crs,
        src_nodata=np.nan,
        dst_transform=dst_transform,
        dst_crs="EPSG:3857",
        dst_nodata=np.nan,
        resampling=resampling,
    )
    x0, y0 = dst_transform.c, dst_transform.f
    x1, y1 = x0 + dst_transform.a * int(width), y0 + dst_transform.e * int(height)
    west, south, east, north = transform_bounds("EPSG:3857", "EPSG:4326", x0, y1, x1, y0)
    return out, [[float(south), float(west)], [float(north), float(east)]]


def _png_data_uri(rgba: npt.NDArray[np.uint8]) -> str:
    buffer = io.BytesIO()
    mpimage.imsave(buffer, rgba, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def basemap_rgba(dem: FloatArray, shade: FloatArray) -> npt.NDArray[np.uint8]:
    """Colour a hillshade: a pale land colour (greener low, tanner high) darkened by the shade.

    Args:
        dem: Elevations; NaN where unknown (transparent in the image).
        shade: Hillshade in ``[0, 1]`` on the same grid.

    Returns:
        An RGBA image, ``uint8``, of the grid's shape.
    """
    valid = np.isfinite(dem) & np.isfinite(shade)
    rgba = np.zeros((*dem.shape, 4), dtype=np.uint8)
    if not valid.any():
        return rgba
    lo, hi = float(np.min(dem[valid])), float(np.max(dem[valid]))
    t = np.clip((np.where(valid, dem, lo) - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros(dem.shape)
    land = LAND_LOW[None, None, :] * (1.0 - t[..., None]) + LAND_HIGH[None, None, :] * t[..., None]
    light = 0.45 + 0.55 * np.where(valid, shade, 1.0)
    rgba[..., :3] = np.clip(land * light[..., None] * 255.0, 0, 255).astype(np.uint8)
    rgba[..., 3] = np.where(valid, 255, 0).astype(np.uint8)
    return rgba


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
    dem = _read_raster(dem_path, Resampling.average)
    cell_x, cell_y = _cell_size_m(dem)
    shade = hillshade(dem.values, cell_x, cell_y)
    warped, bounds = _to_web_mercator(dem, np.stack([dem.values, shade]), Resampling.bilinear)
    folium.raster_layers.ImageOverlay(
        _png_data_uri(basemap_rgba(warped[0], warped[1])),
        bounds=bounds,
        name=LAYER_BASEMAP,
        overlay=False,
        control=True,
        show=True,
        pixelated=False,
        pane=PANE_BASEMAP,
    ).add_to(fmap)


def leakage_rgba(values: FloatArray) -> tuple[npt.NDArray[np.uint8], float, float]:
    """Colour the leakage index on a log scale, transparent where it is zero or unknown.

    Args:
        values: kg/yr per cell; 0 or NaN where nothing leaks.

    Returns:
        The RGBA image and the values at the low and high ends of the colour ramp (``0, 0`` when
        nothing is above zero).
    """
    positive = np.isfinite(values) & (values > 0)
    rgba = np.zeros((*values.shape, 4), dtype=np.uint8)
    if not positive.any():
        return rgba, 0.0, 0.0
    pos = values[positive]
    hi = float(pos.max())
    lo = max(float(np.percentile(pos, 2)), hi * 1e-4)
    if lo >= hi:
        lo = hi / 10.0
    t = (np.log10(np.clip(np.where(positive, values, lo), lo, hi)) - math.log10(lo)) / (
        math.log10(hi) - math.log10(lo)
    )
    colours = colormaps[LEAKAGE_CMAP](np.clip(t, 0.0, 1.0))
    rgba[..., :3] = np.clip(colours[..., :3] * 255.0, 0, 255).astype(np.uint8)
    # Faint where little leaks, so the basemap shows through; nearly opaque at the hotspots.
    rgba[..., 3] = np.where(positive, 70 + 150 * np.clip(t, 0.0, 1.0), 0).astype(np.uint8)
    return rgba, lo, hi


def _add_leakage_raster(fmap: folium.Map, path: Path, legend: Legend) -> None:
    if not path.is_file():
        return
    raster = _read_raster(path, Resampling.average)
    warped, bounds = _to_web_mercator(raster, raster.values[None, ...], Resampling.nearest)
    rgba, lo, hi = leakage_rgba(warped[0])
    if hi <= 0:
        legend.add(LAYER_LEAKAGE, note="no cell leaks plastic into a waterway")
        return
    folium.raster_layers.ImageOverlay(
        _png_data_uri(rgba),
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
        ramp=_ramp_css(LEAKAGE_CMAP),
        ends=(_fmt(lo), _fmt(hi)),
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
                totals.append((f"{label} (all sub-basins)", _fmt(subbasins[column].sum(), "kg/yr")))
        features = []
        for row, geom in _records(subbasins):
            name = _text(row.get("name")) or f"Sub-basin {_text(row.get('subbasin'))}"
            rows = [
                ("Sub-basin", _text(row.get("subbasin"))),
                ("Leakage", _fmt(row.get("leakage_kg_yr"), "kg/yr")),
                ("Accumulation", _fmt(row.get("accumulation_kg_yr"), "kg/yr")),
            ]
            if "area_km2" in row:
                rows.append(("Area", _fmt(row.get("area_km2"), "km²")))
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
        name = _text(row.get("name")) or "Basin"
        rows = [("Area", _fmt(row.get("area_km2"), "km²"))] if "area_km2" in row else []
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


def _add_density(fmap: folium.Map, cells: gpd.GeoDataFrame | None, legend: Legend) -> None:
    if cells is None:
        return
    records = _records(cells)
    surveyed_rates = [
        rate
        for row, _ in records
        if _is_surveyed(row) and (rate := _number(row.get("rate"))) is not None and rate >= 0
    ]
    # The ramp ends at the 95th percentile, so one extreme cell does not wash out all the others.
    top = float(np.percentile(surveyed_rates, 95)) if surveyed_rates else 0.0
    clipped = bool(surveyed_rates) and max(surveyed_rates) > top
    cmap = colormaps[DENSITY_CMAP]
    features = []
    n_unsurveyed = 0
    for row, geom in records:
        counts = [
            ("Observations", _fmt(row.get("observations"))),
            ("Effort", _fmt(row.get("effort_km"), "km")),
            ("Items seen", _fmt(row.get("items"))),
        ]
        rate = _number(row.get("rate"))
        if _is_surveyed(row) and rate is not None:
            colour = _hex(cmap(min(rate / top, 1.0) if top > 0 else 0.0))
            interval = f"{_fmt(row.get('rate_lo'))} to {_fmt(row.get('rate_hi'))}"
            rows = [("Rate", _fmt(rate, "items/photo")), ("Interval", interval), *counts]
            features.append(
                _feature(
                    geom,
                    style=_area_style(colour, 0.65, "#333333", 0.4),
                    popup=popup_content("Observed litter density", rows),
                    tooltip=html.escape(_fmt(rate, "items/photo")),
                )
            )
        else:
            n_unsurveyed += 1
            rows = [("Status", "not surveyed: too few observations to estimate a rate"), *counts]
            features.append(
                _feature(
                    geom,
                    style=_area_style("url(#ph-hatch)", 0.85, "#8c8c8c", 0.4),
                    popup=popup_content("Observed litter density", rows),
                    tooltip="not surveyed",
                )
            )
    _geojson_layer(features, LAYER_DENSITY, pane=PANE_AREAS).add_to(fmap)
    legend.add(
        LAYER_DENSITY,
        ramp=_ramp_css(DENSITY_CMAP) if surveyed_rates else "",
        ends=(_fmt(0.0), ("≥ " if clipped else "") + _fmt(top)) if surveyed_rates else None,
        note="litter items per photo, effort-normalised",
    )
    if n_unsurveyed:
        legend.add(
            "not surveyed",
            symbol='<span class="ph-swatch ph-hatch"></span>',
            note="too few observations to estimate a rate (no evidence either way)",
        )


def _add_rivers(fmap: folium.Map, rivers: gpd.GeoDataFrame | None, legend: Legend) -> None:
    if rivers is None:
        return
    features = []
    for row, geom in _records(rivers):
        order = _number(row.get("order"))
        weight = 1.0 + 0.9 * (max(order, 1.0) - 1.0) if order is not None else 1.5
        features.append(
            _feature(
                geom,
                style={"color": RIVER_COLOUR, "weight": min(weight, 8.0), "opacity": 0.85},
                tooltip=html.escape(f"Stream order {_fmt(order)}"),
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
        kind = _text(row.get("kind"))
        letter, colour = BARRIER_KINDS.get(kind.lower(), UNKNOWN_BARRIER)
        kinds_seen[kind.lower() if kind.lower() in BARRIER_KINDS else "other"] = (letter, colour)
        name = _text(row.get("name")) or "Barrier"
        rows = [
            ("Kind", kind or "unknown"),
            ("Pass factor", _fmt(row.get("pass_factor"))),
            ("Retained", _fmt(row.get("retained_kg_yr"), "kg/yr")),
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
    values = [v for row, _ in records if (v := _number(row.get("value"))) is not None and v > 0]
    top = max(values) if values else 0.0
    features = []
    for row, geom in records:
        value = _number(row.get("value"))
        radius = 4.0 + 14.0 * math.sqrt(value / top) if value is not None and value > 0 and top > 0 else 4.0
        unit = _text(row.get("unit")) or "kg/yr"
        rank = _text(row.get("rank"))
        rows = [
            ("Rank", rank),
            ("Value", _fmt(value, unit)),
            ("Main driver", _text(row.get("driver")) or "n/a"),
        ]
        if kind == "leakage":
            rows += [
                ("Population", _fmt(row.get("population"))),
                ("Collection rate", _percent(row.get("collection_rate"))),
                ("P(reach river)", _fmt(row.get("p_land"))),
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
                tooltip=html.escape(f"{label} #{rank}: {_fmt(value, unit)}"),
            )
        )
    _geojson_layer(features, name, pane=PANE_POINTS, point_to_layer=_CIRCLE_MARKER).add_to(fmap)
    legend.add(
        name,
        symbol=f'<span class="ph-dot" style="width:12px;height:12px;background:{colour}"></span>',
        note=f"area by value (largest {_fmt(top, 'kg/yr')}); click for the driver",
    )


def _add_survey_points(fmap: folium.Map, points: gpd.GeoDataFrame | None, legend: Legend) -> None:
    if points is None:
        return
    total = len(points)
    shown = points
    if total > MAX_SURVEY_POINTS:
        keep = np.sort(np.random.default_rng(0).choice(total, size=MAX_SURVEY_POINTS, replace=False))
        shown = points.iloc[keep]
    features = []
    for row, geom in _records(shown):
        items = _number(row.get("items"))
        rows = [
            ("Items", _fmt(items)),
            ("Captured", _text(row.get("captured_at")) or "n/a"),
            ("Image", _text(row.get("image")) or "n/a"),
        ]
        fill = LEAKAGE_COLOUR if items is not None and items > 0 else SURVEY_COLOUR
        features.append(
            _feature(
                geom.centroid if geom.geom_type != "Point" else geom,
                style={
                    "radius": 3,
                    "color": SURVEY_COLOUR,
                    "weight": 0.6,
                    "fillColor": fill,
                    "fillOpacity": 0.9,
                },
                popup=popup_content("Survey photo", rows),
            )
        )
    _geojson_layer(features, LAYER_SURVEY, pane=PANE_POINTS, point_to_layer=_CIRCLE_MARKER).add_to(fmap)
    if total > MAX_SURVEY_POINTS:
        note = (
            f"{MAX_SURVEY_POINTS:,} of {total:,} photos shown (a random sample); "
            "all of them count in the observed density"
        )
    else:
        note = f"all {total:,} photos; red: litter seen, grey: none"
    legend.add(
        LAYER_SURVEY,
        symbol=f'<span class="ph-dot" style="width:6px;height:6px;background:{LEAKAGE_COLOUR}"></span>',
        note=note,
    )


# --- text -----------------------------------------------------------------------------------------


def popup_content(title: str, rows: Sequence[tuple[str, str]]) -> list[Any]:
    """A popup's content, ``[title, [[label, value], ...]]``, every string HTML-escaped here.

    The page's JavaScript puts these strings into a table as they are, so plain text from the
    result files (names, drivers, image names) shows as text and never becomes markup.

    Args:
        title: Caption of the popup (plain text).
        rows: ``(label, value)`` pairs (plain text).

    Returns:
        The escaped title and rows, ready to embed as a GeoJSON property.
    """
    return [html.escape(title), [[html.escape(label), html.escape(value)] for label, value in rows]]


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, (str, bytes)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _fmt(value: Any, unit: str = "") -> str:
    number = _number(value)
    if number is None:
        return "n/a"
    magnitude = abs(number)
    if number.is_integer() and magnitude < 1e15:
        text = f"{int(number):,}"
    elif magnitude >= 100:
        text = f"{number:,.0f}"
    elif magnitude >= 1:
        text = f"{number:.2f}"
    else:
        text = f"{number:.3g}"
    return f"{text} {unit}" if unit else text


def _percent(value: Any) -> str:
    number = _number(value)
    if number is None:
        return "n/a"
    return f"{number * 100:.0f}%" if number <= 1 else f"{number:.0f}%"


def _is_surveyed(row: Mapping[str, Any]) -> bool:
    flag = row.get("surveyed")
    if flag is None or (isinstance(flag, float) and math.isnan(flag)):
        return _number(row.get("rate")) is not None
    return bool(flag)


def _hex(rgba: Sequence[float]) -> str:
    r, g, b = (round(float(c) * 255) for c in rgba[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def _ramp_css(cmap_name: str) -> str:
    cmap = colormaps[cmap_name]
    stops = ", ".join(_hex(cmap(i / 8)) for i in range(9))
    return f"linear-gradient(to right, {stops})"


@dataclass
class Legend:
    """Entries of the legend box, in the order the layers were added."""

    entries: list[str] = field(default_factory=list)

    def add(
        self,
        label: str,
        *,
        symbol: str = "",
        ramp: str = "",
        ends: tuple[str, str] | None = None,
        note: str = "",
        note_html: str = "",
    ) -> None:
        """Add an entry.

        ``label``, ``ends`` and ``note`` are plain text and escaped here; ``symbol``, ``ramp`` and
        ``note_html`` are trusted HTML/CSS built by this module from constants.
        """
        parts = [f'<div class="ph-entry">{symbol}<span class="ph-label">{html.escape(label)}</span>']
        if ramp:
            parts.append(f'<div class="ph-ramp" style="background: {ramp}"></div>')
        if ends is not None:
            low, high = (html.escape(end) for end in ends)
            parts.append(f'<div class="ph-ends"><span>{low}</span><span>{high}</span></div>')
        if note:
            parts.append(f'<div class="ph-note">{html.escape(note)}</div>')
        if note_html:
            parts.append(f'<div class="ph-note">{note_html}</div>')
        parts.append("</div>")
        self.entries.append("".join(parts))

    def to_html(self) -> str:
        """The legend box."""
        return f'<div class="ph-box ph-legend"><h2>Legend</h2>{"".join(self.entries)}</div>'


def _title_html(title: str, basin_name: str) -> str:
    sub = f"<div>Basin: {html.escape(basin_name)}</div>" if basin_name else ""
    return f'<div class="ph-box ph-title"><h1>{html.escape(title)}</h1>{sub}</div>'


def _footer_html(provenance: Mapping[str, Any] | None) -> str:
    if provenance is None:
        text = "Provenance: provenance.json not found"
    else:
        tool = _text(provenance.get("tool")) or "plastic-hotspots"
        version = _text(provenance.get("version")) or "unknown version"
        created = _text(provenance.get("created_at")) or "unknown time"
        text = f"Made by {tool} (plastic-hotspots {version}) on {created}"
    return f'<div class="ph-box ph-footer">{html.escape(text)}</div>'


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
