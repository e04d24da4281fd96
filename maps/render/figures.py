"""The figures of the report: survey coverage, drawings as inline SVG, and numbers written for people.

Pure functions over the result's vector layers (EPSG:4326): how much of the basin the survey saw, a bar
chart of leakage and retention per sub-basin, and a sketch map of the basin with its numbered hotspots.
Every label is HTML-escaped. :mod:`plastic_hotspots.maps.render.report` lays them out on the page.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np

from plastic_hotspots.maps.params import GI_FDR
from plastic_hotspots.maps.render.text import REPORT_NUMBERS, as_number, as_text, fmt

MAX_BARS = 20
"""Sub-basins beyond this many (the smallest leakage) are summed in one line under the chart."""

LEAKAGE_COLOUR = "#d7301f"
ACCUMULATION_COLOUR = "#6a3d9a"
RIVER_COLOUR = "#2b7bba"


# --- survey coverage ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SurveyCoverage:
    """How much of the basin the litter survey saw.

    Attributes:
        cells: Grid cells with at least one observation.
        surveyed_cells: Cells with enough observations for a rate (``surveyed``).
        low_effort_cells: Cells with observations, but too few to count as surveyed.
        observations: Observations (images or frames) in all cells.
        items: Litter items counted in them.
        effort_km: Kilometres surveyed.
        surveyed_km2: Area of the surveyed cells inside the basin.
        basin_km2: Area of the basin.
        far_above_model: Surveyed cells with far more litter than the calibrated model expects.
        hot_cells: Surveyed cells in a significant Getis-Ord Gi* hot spot, or None without ``gi_z``:
            false-discovery corrected (``gi_q`` at most :data:`GI_FDR`) where the layer has
            q-values, else the uncorrected p below 0.05.
        hot_corrected: Whether ``hot_cells`` is false-discovery corrected.
        photos: Survey points (images), or None without the ``survey_points`` layer.
        tracks: Distinct survey tracks, or None when unknown.
        first_date: Earliest capture date (``YYYY-MM-DD``), or "" when unknown.
        last_date: Latest capture date, or "".
    """

    cells: int
    surveyed_cells: int
    low_effort_cells: int
    observations: int
    items: float
    effort_km: float
    surveyed_km2: float
    basin_km2: float
    far_above_model: int
    hot_cells: int | None
    photos: int | None
    tracks: int | None
    first_date: str
    last_date: str
    hot_corrected: bool = False

    @property
    def surveyed_share(self) -> float:
        """Fraction of the basin area covered by surveyed cells."""
        return self.surveyed_km2 / self.basin_km2 if self.basin_km2 > 0 else 0.0


def survey_coverage(
    cells: gpd.GeoDataFrame | None, points: gpd.GeoDataFrame | None, basin: gpd.GeoDataFrame
) -> SurveyCoverage | None:
    """Survey coverage figures from the ``observed_density`` cells; None without them (no survey).

    Args:
        cells: The ``observed_density`` layer (EPSG:4326), or None.
        points: The ``survey_points`` layer, or None.
        basin: The ``basin`` layer.

    Returns:
        The coverage, or None where there was no survey.
    """
    if cells is None or len(cells) == 0:
        return None
    metric = basin.estimate_utm_crs()
    basin_shape = basin.to_crs(metric).geometry.union_all()
    basin_km2 = float(basin_shape.area) / 1e6
    surveyed = bool_column(cells, "surveyed", default=True)
    in_basin = cells.to_crs(metric).geometry.intersection(basin_shape).area.to_numpy() / 1e6
    far = bool_column(cells, "far_above_model", default=False) & surveyed
    hot: int | None = None
    corrected = "gi_q" in cells.columns
    if "gi_z" in cells.columns:
        gi_z = np.asarray(cells["gi_z"].to_numpy(dtype=np.float64, na_value=np.nan))
        test = np.asarray(cells["gi_q" if corrected else "gi_p"].to_numpy(dtype=np.float64, na_value=np.nan))
        level = GI_FDR if corrected else 0.05
        hot = int(
            ((np.nan_to_num(gi_z, nan=0.0) > 0) & (np.nan_to_num(test, nan=1.0) <= level))[surveyed].sum()
        )
    photos = tracks = None
    first = last = ""
    if points is not None:
        photos = len(points)
        if "track" in points.columns:
            tracks = int(points["track"].nunique())
        if "captured_at" in points.columns:
            dates = sorted(str(v)[:10] for v in points["captured_at"].dropna() if str(v).strip())
            if dates:
                first, last = dates[0], dates[-1]
    return SurveyCoverage(
        cells=len(cells),
        surveyed_cells=int(surveyed.sum()),
        low_effort_cells=int((~surveyed).sum()),
        observations=int(column_sum(cells, "observations")),
        items=column_sum(cells, "items"),
        effort_km=column_sum(cells, "effort_km"),
        surveyed_km2=float(in_basin[surveyed].sum()),
        basin_km2=basin_km2,
        far_above_model=int(far.sum()),
        hot_cells=hot,
        hot_corrected=corrected,
        photos=photos,
        tracks=tracks,
        first_date=first,
        last_date=last,
    )


def bool_column(frame: gpd.GeoDataFrame, name: str, *, default: bool) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """A column as booleans (missing values and a missing column: ``default``)."""
    if name not in frame.columns:
        return np.full(len(frame), default, dtype=bool)
    return np.asarray(frame[name].fillna(default).astype(bool).to_numpy(), dtype=bool)


def column_sum(frame: gpd.GeoDataFrame, name: str) -> float:
    """The sum of a numeric column, NaN left out; 0 without the column."""
    if name not in frame.columns:
        return 0.0
    return float(np.nansum(frame[name].to_numpy(dtype=np.float64, na_value=np.nan)))


# --- charts -------------------------------------------------------------------------------------


def subbasin_chart_svg(subs: gpd.GeoDataFrame, *, width: int = 560, max_bars: int = MAX_BARS) -> str:
    """A horizontal bar chart (inline SVG) of leakage and accumulation per sub-basin, kg/yr.

    Sub-basins are sorted by leakage; beyond ``max_bars`` the rest are summed in a note below.

    Args:
        subs: The ``subbasins`` layer (``name``, ``leakage_kg_yr``, ``accumulation_kg_yr``).
        width: Width of the chart in pixels.
        max_bars: Most sub-basins drawn.

    Returns:
        An ``<svg>`` element, every label escaped.
    """
    names = [as_text(r.get("name")) or f"Sub-basin {as_text(r.get('subbasin'))}" for _, r in subs.iterrows()]
    leak = [v or 0.0 for v in numbers(subs, "leakage_kg_yr")]
    acc = [v or 0.0 for v in numbers(subs, "accumulation_kg_yr")]
    area = numbers(subs, "area_km2")
    order = sorted(range(len(names)), key=lambda i: (-leak[i], -acc[i], names[i]))
    shown, rest = order[:max_bars], order[max_bars:]
    label_w, value_w, top, row_h, bar_h = 150, 62, 34, 24, 9
    plot_w = width - label_w - value_w
    height = top + row_h * len(shown) + 8
    peak = max([leak[i] for i in shown] + [acc[i] for i in shown] + [1e-9])
    scale = plot_w / peak
    parts = [
        f'<svg class="bars" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Leakage and retention per sub-basin, kg/yr">',
        f'<rect x="{label_w}" y="6" width="12" height="10" fill="{LEAKAGE_COLOUR}"/>'
        f'<text x="{label_w + 16}" y="15" font-size="12">leakage into rivers, kg/yr</text>'
        f'<rect x="{label_w + 190}" y="6" width="12" height="10" fill="{ACCUMULATION_COLOUR}"/>'
        f'<text x="{label_w + 206}" y="15" font-size="12">retained, kg/yr</text>',
    ]
    for tick in _nice_ticks(peak):
        x = label_w + tick * scale
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 6}" stroke="#ddd"/>'
            f'<text x="{x:.1f}" y="{top - 9}" font-size="10" text-anchor="middle" fill="#666">'
            f"{escape(format_short(tick))}</text>"
        )
    for j, i in enumerate(shown):
        y = top + j * row_h
        label = names[i] if len(names[i]) <= 24 else names[i][:23] + "…"
        if area[i] is not None:
            label += f" ({format_number(area[i])} km²)"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_h + 4}" font-size="11" text-anchor="end">{escape(label)}'
            f"<title>{escape(names[i])}</title></text>"
        )
        for k, (value, colour, cls) in enumerate(
            ((leak[i], LEAKAGE_COLOUR, "bar-leak"), (acc[i], ACCUMULATION_COLOUR, "bar-acc"))
        ):
            yy = y + k * (bar_h + 1)
            w = max(value * scale, 0.5 if value > 0 else 0.0)
            parts.append(
                f'<rect class="{cls}" x="{label_w}" y="{yy}" width="{w:.1f}" height="{bar_h}" '
                f'fill="{colour}">'
                f"<title>{escape(names[i])}: {escape(format_number(value, 'kg/yr'))}</title></rect>"
                f'<text x="{label_w + w + 3:.1f}" y="{yy + bar_h - 1}" font-size="9" fill="#333">'
                f"{escape(format_number(value))}</text>"
            )
    parts.append("</svg>")
    note = ""
    if rest:
        rest_leak, rest_acc = sum(leak[i] for i in rest), sum(acc[i] for i in rest)
        note = (
            f'<p class="note">{len(rest)} smaller sub-basins not drawn: {format_number(rest_leak, "kg/yr")} '
            f"leakage, {format_number(rest_acc, 'kg/yr')} retained in all.</p>"
        )
    return "".join(parts) + note


def sketch_map_svg(layers: Mapping[str, gpd.GeoDataFrame], *, width: int = 380) -> str:
    """A sketch map (inline SVG): basin, sub-basins, rivers and the numbered hotspots.

    Longitude is scaled by the cosine of the basin's middle latitude, so shapes keep their proportions.

    Args:
        layers: The GeoPackage's layers (EPSG:4326).
        width: Width of the map in pixels.

    Returns:
        An ``<svg>`` element with a legend and a scale bar.
    """
    basin = layers["basin"]
    west, south, east, north = (float(v) for v in basin.total_bounds)
    kx = math.cos(math.radians((south + north) / 2))
    span_x, span_y = max((east - west) * kx, 1e-9), max(north - south, 1e-9)
    pad, legend_h = 8, 44
    scale = (width - 2 * pad) / span_x
    map_h = span_y * scale
    height = int(map_h + 2 * pad + legend_h)
    tolerance = max(span_x, span_y) / 600

    def xy(lon: float, lat: float) -> str:
        return f"{pad + (lon - west) * kx * scale:.1f},{pad + (north - lat) * scale:.1f}"

    def path(geom: Any) -> str:
        geom = geom.simplify(tolerance, preserve_topology=True)
        parts = []
        for line in _lines(geom):
            coords = list(line.coords)
            if len(coords) >= 2:
                parts.append("M" + " L".join(xy(x, y) for x, y, *_ in coords))
        return " ".join(parts)

    out = [
        f'<svg class="sketch" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Sketch map of the basin and its hotspots">',
        f'<rect x="0" y="0" width="{width}" height="{map_h + 2 * pad:.1f}" fill="#f7f7f2"/>',
    ]
    for geom in basin.geometry:
        out.append(
            f'<path d="{path(geom)}" fill="#e9efe0" stroke="#333" stroke-width="1.6" fill-rule="evenodd"/>'
        )
    subs = layers.get("subbasins")
    if subs is not None:
        for geom in subs.geometry:
            out.append(f'<path d="{path(geom)}" fill="none" stroke="#999" stroke-width="0.6"/>')
    rivers = layers.get("rivers")
    if rivers is not None:
        for _, row in rivers.iterrows():
            order = as_number(row.get("order")) or 1.0
            out.append(
                f'<path d="{path(row.geometry)}" fill="none" stroke="{RIVER_COLOUR}" '
                f'stroke-width="{min(0.6 + 0.5 * order, 3.0):.1f}" stroke-linecap="round"/>'
            )
    for kind, colour in (("accumulation", ACCUMULATION_COLOUR), ("leakage", LEAKAGE_COLOUR)):
        frame = layers.get(f"{kind}_hotspots")
        if frame is None:
            continue
        for i, (_, row) in enumerate(frame.iterrows(), start=1):
            point = row.geometry.representative_point()
            x, y = (float(v) for v in xy(point.x, point.y).split(","))
            rank = as_text(row.get("rank")) or str(i)
            shape = (
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6.5"'
                if kind == "leakage"
                else f'<rect x="{x - 6:.1f}" y="{y - 6:.1f}" width="12" height="12"'
            )
            out.append(
                f'<g class="{kind}-spot">{shape} fill="{colour}" stroke="#fff" stroke-width="1"/>'
                f'<text x="{x:.1f}" y="{y + 3.5:.1f}" font-size="9" font-weight="bold" fill="#fff" '
                f'text-anchor="middle">{escape(rank)}</text></g>'
            )
    base = map_h + 2 * pad
    km = span_x * 111.32
    bar_km = _nice_ticks(km / 3)[-1] if km > 0 else 1.0
    bar_px = bar_km / 111.32 * scale
    out.append(
        f'<circle cx="{pad + 7}" cy="{base + 14}" r="6" fill="{LEAKAGE_COLOUR}"/>'
        f'<text x="{pad + 17}" y="{base + 18}" font-size="11">leakage hotspot (rank)</text>'
        f'<rect x="{pad + 1}" y="{base + 26}" width="12" height="12" fill="{ACCUMULATION_COLOUR}"/>'
        f'<text x="{pad + 17}" y="{base + 36}" font-size="11">accumulation hotspot</text>'
        f'<line x1="{width - pad - bar_px:.1f}" y1="{base + 20}" x2="{width - pad}" y2="{base + 20}" '
        'stroke="#333" stroke-width="3"/>'
        f'<text x="{width - pad - bar_px / 2:.1f}" y="{base + 35}" font-size="11" text-anchor="middle">'
        f"{escape(format_short(bar_km))} km</text>"
    )
    out.append("</svg>")
    return "".join(out)


def _lines(geom: Any) -> list[Any]:
    """The lines of a geometry: polygon rings, line strings, recursing into collections."""
    kind = geom.geom_type
    if kind == "Polygon":
        return [geom.exterior, *geom.interiors]
    if kind in {"LineString", "LinearRing"}:
        return [geom]
    if kind.startswith("Multi") or kind == "GeometryCollection":
        return [line for part in geom.geoms for line in _lines(part)]
    return []


def _nice_ticks(peak: float, count: int = 4) -> list[float]:
    """Round tick values from 0 up to at most ``peak``: steps of 1, 2 or 5 times a power of ten."""
    if peak <= 0 or not math.isfinite(peak):
        return [0.0]
    raw = peak / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [i * step for i in range(int(peak / step + 1e-9) + 1)]


# --- text ---------------------------------------------------------------------------------------


def numbers(frame: gpd.GeoDataFrame, name: str) -> list[float | None]:
    """A column as numbers (None where missing or not finite); all None without the column."""
    return [as_number(v) for v in frame[name]] if name in frame.columns else [None] * len(frame)


def escape(value: Any) -> str:
    """Any value as HTML-escaped text (quotes too), so text from files never becomes markup."""
    return html.escape(value if isinstance(value, str) else as_text(value), quote=True)


def format_number(value: Any, unit: str = "") -> str:
    """A number as the report writes it: :func:`~plastic_hotspots.maps.render.text.fmt` in its style."""
    return fmt(value, unit, REPORT_NUMBERS)


def format_short(value: float) -> str:
    """A tick label: 20k, 1.5M, 0.5."""
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:g}M"
    if magnitude >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def format_percent(fraction: float) -> str:
    """A fraction as a percentage: whole from 10 %, two significant digits below (5 %, 0.24 %)."""
    percent = 100.0 * fraction
    if percent == 0 or percent >= 10:
        return f"{percent:.0f} %"
    return f"{percent:.2g} %"
