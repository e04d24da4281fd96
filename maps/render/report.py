"""A one-page summary of a hotspot result directory for a river agency: one self-contained HTML file.

The page holds the headline figures of the basin, the ranked leakage and accumulation hotspots with
what drives them, a bar chart per sub-basin, a sketch map of where the hotspots are, the survey
coverage, the model version and data provenance, and the limits of the result in plain words, each
derived from what the directory holds. It needs no network and no JavaScript: the charts are inline
SVG, ``fusion.png`` is embedded as a data URI, and a Content-Security-Policy forbids scripts and any
fetch. Print CSS lays it out on A4, so the browser's Print dialog saves a tidy PDF of one or two pages.

Every piece of text read from the result files (names, drivers, summaries, paths, parameters) and the
title is HTML-escaped before it reaches the page, so a sub-basin named ``<script>...`` shows as text.
Any layer but ``basin``, and ``provenance.json``, ``fusion.json``, ``fusion.png`` and the rasters, may be
missing: the report then says so ("no survey", "provenance.json not found") instead of failing.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.errors import RasterioError

from plastic_hotspots import __version__
from plastic_hotspots.geoio import atomic_path
from plastic_hotspots.maps.io.bands import read_band_nan
from plastic_hotspots.maps.io.results import (
    FUSION_JSON,
    FUSION_PNG,
    PROVENANCE_FILE,
    RASTERS,
    RESULT_LAYERS,
    check_result_dir,
    read_json,
    read_result_layers,
)
from plastic_hotspots.maps.params import GI_FDR
from plastic_hotspots.maps.render.figures import (
    SurveyCoverage,
    column_sum,
    escape,
    format_number,
    format_percent,
    sketch_map_svg,
    subbasin_chart_svg,
    survey_coverage,
)
from plastic_hotspots.maps.render.text import as_number, as_text
from plastic_hotspots.maps.render.uncertainty import (
    format_range,
    has_draws,
    rank_html,
    read_uncertainty,
    total_range,
    uncertainty_html,
)

KEY_PARAMETERS = (
    ("cell_size_m", "grid cell, m"),
    ("grid_crs", "grid CRS"),
    ("zone_defaults.generation_kg_per_cap_day", "waste generated where no zone says, kg/person/day"),
    ("zone_defaults.plastic_share", "plastic share where no zone says"),
    ("zone_defaults.collection_rate", "collection rate where no zone says"),
    ("land_lambda_m", "land travel length, m"),
    ("land_lambda_slope_gain", "land travel gain per unit slope"),
    ("river_threshold_km2", "river from upstream area, km2"),
    ("river_mu_km", "river travel length (order 1), km"),
    ("min_observations", "observations for a cell to count as surveyed"),
    ("top_n", "hotspots ranked per kind"),
    ("hotspot_separation_m", "minimum distance between hotspots, m"),
)

_CSS = """
@page { size: A4; margin: 12mm 11mm 13mm 11mm; }
* { box-sizing: border-box; }
body { margin: 0; background: #eef0f2; color: #1d1d1f;
  font: 14px/1.45 "Helvetica Neue", Arial, Helvetica, "DejaVu Sans", sans-serif; }
main { max-width: 980px; margin: 18px auto; background: #fff; padding: 22px 30px 26px;
  box-shadow: 0 1px 6px rgba(0, 0, 0, 0.18); }
header { border-bottom: 3px solid #1d1d1f; padding-bottom: 8px; margin-bottom: 12px; }
h1 { font-size: 25px; margin: 0 0 2px 0; }
h2 { font-size: 17px; margin: 16px 0 6px 0; border-bottom: 1px solid #ccc; padding-bottom: 2px; }
h3 { font-size: 14px; margin: 6px 0 4px 0; }
.sub { color: #555; } .note { color: #555; font-size: 12px; } .missing { color: #8a4b00; font-weight: bold; }
.print-note { background: #fff8dc; border: 1px solid #e2cf8a; border-radius: 4px; padding: 5px 9px;
  font-size: 13px; margin: 0 0 10px 0; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 8px; }
.figure { border: 1px solid #d5d5d5; border-left: 5px solid #777; border-radius: 3px; padding: 5px 8px; }
.figure .value { font-size: 19px; font-weight: bold; }
.figure .range { font-size: 13px; font-weight: normal; }
.unstable { color: #b30000; font-weight: bold; } .figure .label { font-size: 12px; color: #444; }
.figure.leak { border-left-color: #d7301f; } .figure.acc { border-left-color: #6a3d9a; }
.figure.survey { border-left-color: #238b45; }
.two { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.chart-map { display: grid; grid-template-columns: 3fr 2fr; gap: 14px; align-items: start; }
table { border-collapse: collapse; width: 100%; font-size: 12px; }
th, td { text-align: left; padding: 2px 5px; border-bottom: 1px solid #e2e2e2; vertical-align: top; }
th { background: #f2f2f2; font-weight: bold; }
.nowrap { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
caption { text-align: left; font-weight: bold; padding: 2px 0 3px 0; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font-family: "Helvetica Neue", Arial, Helvetica, "DejaVu Sans", sans-serif; }
img.fusion { width: 100%; height: auto; border: 1px solid #ddd; margin-top: 6px; }
ul.limits li { margin: 2px 0; }
dl.prov { display: grid; grid-template-columns: max-content 1fr; gap: 1px 12px; margin: 0; font-size: 13px; }
dl.prov dt { color: #555; } dl.prov dd { margin: 0; overflow-wrap: anywhere; }
footer { margin-top: 14px; border-top: 1px solid #ccc; padding-top: 4px; font-size: 11px; color: #555; }
@media print {
  body { background: #fff; font-size: 9pt; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  main { max-width: none; margin: 0; padding: 0; box-shadow: none; }
  .no-print { display: none; }
  h1 { font-size: 17pt; } h2 { font-size: 11.5pt; margin: 8px 0 4px 0; break-after: avoid; }
  h3 { font-size: 9.5pt; margin: 3px 0; } header { padding-bottom: 4px; margin-bottom: 6px; }
  table { font-size: 7.5pt; } th, td { padding: 0 4px; } .note, dl.prov { font-size: 7.5pt; }
  .figures { grid-template-columns: repeat(6, 1fr); gap: 5px; } .figure { padding: 2px 5px; }
  .figure .value { font-size: 11pt; } .figure .label { font-size: 7.5pt; }
  .chart-map svg { max-height: 78mm; } img.fusion { width: 82%; margin: 4px auto 0 auto; }
  ul { margin: 2px 0; padding-left: 16px; } ul.inputs { columns: 2; }
  tr, .figures, svg, img, dl, li { break-inside: avoid; }
}
@media screen and (max-width: 760px) { .two, .chart-map { grid-template-columns: 1fr; } }
"""
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def render_report(result_dir: Path, out_html: Path, *, title: str = "Plastic hotspots report") -> Path:
    """Write a one-page summary of a hotspot result directory as one self-contained HTML file.

    The page needs no network and no JavaScript. It is written to a temporary file beside
    ``out_html`` and renamed into place.

    Args:
        result_dir: A directory written by ``plastic-hotspots hotspots`` (``hotspots.gpkg``, and
            optionally ``provenance.json``, ``fusion.json``, ``fusion.png`` and the rasters).
        out_html: The HTML file to write; its folder is created if needed.
        title: Title of the page.

    Returns:
        ``out_html``.

    Raises:
        RenderError: The directory, ``hotspots.gpkg`` or its ``basin`` layer is missing, or the
            GeoPackage cannot be read.
    """
    result_dir, out_html = Path(result_dir), Path(out_html)
    layers = read_result_layers(check_result_dir(result_dir), RESULT_LAYERS)
    provenance = read_json(PROVENANCE_FILE.path(result_dir))
    fusion = read_json(FUSION_JSON.path(result_dir))
    uncertainty = read_uncertainty(result_dir)
    params: Mapping[str, Any] = {}
    if provenance is not None and isinstance(provenance.get("parameters"), dict):
        params = provenance["parameters"]
    coverage = survey_coverage(layers.get("observed_density"), layers.get("survey_points"), layers["basin"])
    basin = layers["basin"]
    basin_name = as_text(basin.iloc[0]["name"]) if "name" in basin.columns else ""
    body = "\n".join(
        (
            _header_html(title, basin_name, provenance),
            _headline_html(layers, result_dir, params, coverage, uncertainty),
            _hotspots_html(layers, params, uncertainty),
            uncertainty_html(uncertainty),
            _subbasins_html(layers),
            _survey_html(coverage, fusion, FUSION_PNG.path(result_dir), params),
            _provenance_html(provenance, result_dir),
            _limits_html(limits(layers, params, coverage, fusion, uncertainty)),
            f"<footer>Report made by plastic-hotspots {escape(__version__)} from the result directory "
            f"<b>{escape(result_dir.name)}</b>. Its interactive map: <code>plastic-hotspots map DIR</code>."
            "</footer>",
        )
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n"
        "</body>\n</html>\n"
    )
    with atomic_path(out_html) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out_html


# --- inputs -------------------------------------------------------------------------------------


def _raster_total(path: Path) -> float | None:
    """The sum of band 1 of a raster (nodata left out), or None when it is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        with rasterio.open(path) as src:
            values = read_band_nan(src)
    except RasterioError:
        return None
    return float(np.nansum(values))


# --- figures ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Totals:
    """The basin's plastic budget, kg/yr; None where the directory does not say."""

    mismanaged: float | None
    leakage: float | None
    retained: float | None
    exported: float | None


def basin_totals(
    layers: Mapping[str, gpd.GeoDataFrame], result_dir: Path, params: Mapping[str, Any]
) -> Totals:
    """Mismanaged plastic, leakage into rivers, retained and exported load of the basin, kg/yr.

    Leakage and retention are summed over the sub-basins (which tile the basin), or else read from
    ``leakage_index.tif`` and ``accumulation.tif``; exported comes from the provenance.
    """
    subs = layers.get("subbasins")
    leakage = retained = None
    if subs is not None and "leakage_kg_yr" in subs.columns:
        leakage = column_sum(subs, "leakage_kg_yr")
    if subs is not None and "accumulation_kg_yr" in subs.columns:
        retained = column_sum(subs, "accumulation_kg_yr")
    if leakage is None:
        leakage = _raster_total(RASTERS["leakage_index"].path(result_dir))
    if retained is None:
        retained = _raster_total(RASTERS["accumulation"].path(result_dir))
    return Totals(
        mismanaged=_raster_total(RASTERS["mismanaged_plastic"].path(result_dir)),
        leakage=leakage,
        retained=retained,
        exported=as_number(params.get("exported_kg_yr")),
    )


def limits(
    layers: Mapping[str, gpd.GeoDataFrame],
    params: Mapping[str, Any],
    coverage: SurveyCoverage | None,
    fusion: Mapping[str, Any] | None,
    uncertainty: Mapping[str, Any] | None = None,
) -> list[str]:
    """The limits of this result, in plain words, chosen by what the directory holds.

    Args:
        layers: The GeoPackage's layers.
        params: The run's parameters (``provenance.json``), empty when unknown.
        coverage: The survey coverage, None without a survey.
        fusion: ``fusion.json``, None without a calibration.
        uncertainty: ``uncertainty.json``, None without it.

    Returns:
        One sentence (plain text, not yet escaped) per limit.
    """
    out: list[str] = []
    calibrated = fusion is not None or any(str(k).startswith("calibration.") for k in params)
    if coverage is None:
        out.append(
            "No survey: nothing here was checked against litter seen on the ground. Waste generation, "
            "plastic share, collection rates and every transport parameter are default or configured "
            "values, not fitted ones; read the figures as a ranking of places, not as measured amounts."
        )
    elif not calibrated:
        out.append(
            "No cell inside the basin had enough observations to calibrate the model against the "
            "survey: the kg/yr figures rest on default or configured parameters, not fitted ones."
        )
    else:
        out.append(
            "Only the link between mismanaged plastic and litter seen was fitted to the survey; how far "
            "litter travels over land and along rivers, and what barriers retain, are default or "
            "configured values, not fitted ones."
        )
    if has_draws(uncertainty):
        out.append(
            "The basin totals' ranges cover only the model's parameters over their plausible ranges (each "
            "a documented guess until calibrated against river flux), not errors of the input layers "
            "(population, DEM, zones) nor of the model's form; the kg/yr of single hotspots and "
            "sub-basins carry no range. Treat the ranking, where stable, as the result."
        )
    else:
        out.append(
            "The kg/yr figures of hotspots, sub-basins and the basin are model estimates without an "
            "uncertainty interval; only observed rates and the calibration carry intervals "
            f"({format_percent(as_number(params.get('interval')) or 0.9)}). Treat the ranking as the result."
        )
    if coverage is not None:
        min_obs = as_text(params.get("min_observations")) or "the minimum number of"
        out.append(
            f"Cells with fewer than {min_obs} observations are not surveyed: their litter is unknown, "
            f"not absent. The survey covers {format_percent(coverage.surveyed_share)} of the basin "
            "area; the rest is model only."
        )
    held_out = _calibration_figure(params, fusion, "held_out_deviance")
    held_null = _calibration_figure(params, fusion, "held_out_null_deviance")
    explains = _explains_survey(params, fusion, held_out, held_null)
    if coverage is not None and coverage.far_above_model:
        out.append(
            f"{coverage.far_above_model} surveyed cell(s) hold far more litter than the model "
            "expects (dumps, markets or other sources the input layers do not show); "
            + (
                "their excess is added as an observed source, but sources in unsurveyed places stay unseen."
                if explains
                else "their litter is not converted to kg/yr (see below)."
            )
        )
    if not explains:
        out.append(
            "The layers do not explain the survey: on held-out survey tracks the calibrated model "
            "predicts litter no better than one area-wide rate. Observed litter is therefore shown as "
            "a density only; it is not converted to kg/yr, not added to the leakage, and no hotspot is "
            "ranked by it."
        )
    barriers = layers.get("barriers")
    passes = {str(k).split(".", 1)[1]: v for k, v in params.items() if str(k).startswith("barrier_pass.")}
    if barriers is not None:
        kinds = sorted({str(k) for k in barriers["kind"].dropna()}) if "kind" in barriers.columns else []
        factors = ", ".join(f"{kind} {format_number(passes[kind])}" for kind in kinds if kind in passes)
        out.append(
            "What dams, weirs, bridges and ports retain follows assumed pass factors per kind"
            + (f" ({factors} of the load passes)" if factors else "")
            + ", not measurements at these structures."
        )
        if "on_river" in barriers.columns:
            off = int((~barriers["on_river"].fillna(False).astype(bool)).sum())
            if off:
                out.append(
                    f"{off} barrier(s) lie off the modelled river network and retain nothing here: check "
                    "their positions or the river threshold."
                )
    else:
        out.append(
            "No barriers were given: nothing is held at dams, weirs or ports; the load they would "
            "hold travels on downstream in this result."
        )
    cell, apart = as_number(params.get("cell_size_m")), as_number(params.get("hotspot_separation_m"))
    out.append(
        "A hotspot is one grid cell"
        + (f" of {format_number(cell)} m" if cell else "")
        + ", placed at its centre"
        + (
            f"; hotspots are at least {format_number(apart)} m apart, so hot cells near one are not listed"
            if apart
            else ""
        )
        + "."
    )
    return out


def _explains_survey(
    params: Mapping[str, Any],
    fusion: Mapping[str, Any] | None,
    held_out: float | None,
    held_null: float | None,
) -> bool:
    """The calibration's verdict on whether the layers explain the survey.

    Results of older runs carry no verdict: there, whether the held-out deviance is below the area-wide
    rate's.
    """
    said = (
        fusion["calibration"].get("explains_survey")
        if fusion and isinstance(fusion.get("calibration"), dict)
        else None
    )
    if said is None:
        said = params.get("calibration.explains_survey")
    if isinstance(said, bool):
        return said
    return not (held_out is not None and held_null is not None and held_out >= held_null)


def _calibration_figure(
    params: Mapping[str, Any], fusion: Mapping[str, Any] | None, name: str
) -> float | None:
    if fusion is not None and isinstance(fusion.get("calibration"), dict):
        value = as_number(fusion["calibration"].get(name))
        if value is not None:
            return value
    return as_number(params.get(f"calibration.{name}"))


# --- sections -----------------------------------------------------------------------------------


def _header_html(title: str, basin_name: str, provenance: Mapping[str, Any] | None) -> str:
    created = as_text(provenance.get("created_at")) if provenance else ""
    version = as_text(provenance.get("version")) if provenance else ""
    sub = " · ".join(
        part
        for part in (
            f"Basin: <b>{escape(basin_name)}</b>" if basin_name else "",
            f"model run {escape(created)}" if created else "",
            f"plastic-hotspots {escape(version)}" if version else "",
        )
        if part
    )
    return (
        f'<header><h1>{escape(title)}</h1><div class="sub">{sub}</div></header>\n'
        '<p class="print-note no-print">Save as PDF: your browser\'s Print dialog (Ctrl+P, or Cmd+P on a '
        'Mac), then "Save as PDF". The page is laid out for A4.</p>'
    )


def _headline_html(
    layers: Mapping[str, gpd.GeoDataFrame],
    result_dir: Path,
    params: Mapping[str, Any],
    coverage: SurveyCoverage | None,
    uncertainty: Mapping[str, Any] | None = None,
) -> str:
    totals = basin_totals(layers, result_dir, params)
    basin = layers["basin"]
    area = as_number(basin.iloc[0]["area_km2"]) if "area_km2" in basin.columns else None
    if area is None:
        area = float(basin.to_crs(basin.estimate_utm_crs()).area.sum()) / 1e6

    def share(value: float | None) -> str:
        if value is None or not totals.leakage:
            return ""
        return f" ({format_percent(value / totals.leakage)} of leakage)"

    def kg(value: float | None, name: str) -> str:
        """A total in kg/yr (HTML); where known, with the 5-95 % range of ``uncertainty.json``."""
        spread = total_range(uncertainty, name) if value is not None else None
        if spread is None:
            return escape(format_number(value, "kg/yr"))
        text = format_range(*spread, unit="kg/yr")
        main, _, bracket = text.partition(" (")
        return f'{escape(main)} <span class="range">({escape(bracket)}</span>'

    cards = [("", escape(format_number(area, "km²")), "basin area")]
    if totals.mismanaged is not None:
        cards.append(("", kg(totals.mismanaged, "mismanaged_kg_yr"), "mismanaged plastic on land"))
    cards.append(("leak", kg(totals.leakage, "into_rivers_kg_yr"), "leakage into rivers"))
    cards.append(
        ("acc", kg(totals.retained, "retained_kg_yr"), "retained in the basin" + share(totals.retained))
    )
    if totals.exported is not None:
        cards.append(
            ("", kg(totals.exported, "exported_kg_yr"), "exported at the outlet" + share(totals.exported))
        )
    if coverage is None:
        cards.append(("survey", "no survey", "no litter observations given"))
    else:
        cards.append(
            ("survey", escape(format_percent(coverage.surveyed_share)), "of the basin area surveyed")
        )
    items = "".join(
        f'<div class="figure {cls}"><div class="value">{value}</div>'
        f'<div class="label">{escape(label)}</div></div>'
        for cls, value, label in cards
    )
    return f'<section id="headline"><h2>The basin in figures</h2><div class="figures">{items}</div></section>'


def _hotspots_html(
    layers: Mapping[str, gpd.GeoDataFrame],
    params: Mapping[str, Any],
    uncertainty: Mapping[str, Any] | None = None,
) -> str:
    subs = layers.get("subbasins")
    leak = _hotspot_table(
        "leakage-table",
        "Leakage-source hotspots: where plastic enters the rivers",
        "kg/yr entering rivers",
        layers.get("leakage_hotspots"),
        subs,
        _leakage_figures,
        lambda rank: rank_html(uncertainty, "leakage", rank),
    )
    barriers = layers.get("barriers")
    cell = as_number(params.get("cell_size_m")) or 100.0
    acc = _hotspot_table(
        "accumulation-table",
        "Accumulation hotspots: where plastic collects",
        "kg/yr retained",
        layers.get("accumulation_hotspots"),
        subs,
        lambda row: _accumulation_figures(row, barriers, cell),
        lambda rank: rank_html(uncertainty, "accumulation", rank),
    )
    apart = as_number(params.get("hotspot_separation_m"))
    return (
        '<section id="hotspots"><h2>Hotspots</h2><p class="note">Ranked by kg/yr'
        + (f", at least {escape(format_number(apart, 'm'))} apart" if apart else "")
        + "; the driver is the factor that lifts the place most above the basin's typical cell"
        + (
            "; in brackets, the rank's 5-95 % range over the parameter draws (unstable: it moves much)"
            if has_draws(uncertainty)
            else ""
        )
        + ". "
        "Longitude and latitude in WGS 84 (EPSG:4326).</p>"
        f"{leak}{acc}</section>"
    )


def _hotspot_table(
    table_id: str,
    caption: str,
    value_label: str,
    frame: gpd.GeoDataFrame | None,
    subs: gpd.GeoDataFrame | None,
    figures: Callable[[Any], tuple[str, str]],
    rank_cell: Callable[[str], str] = escape,
) -> str:
    if frame is None:
        return f'<h3>{escape(caption)}</h3><p class="missing">None ranked in this result.</p>'
    if "rank" in frame.columns:
        frame = frame.sort_values("rank", kind="stable")
    rows = []
    for i, (_, row) in enumerate(frame.iterrows(), start=1):
        point = row.geometry.representative_point()
        rank = as_text(row.get("rank")) or str(i)
        sub = _containing_name(point, subs)
        driver, details = figures(row)
        rows.append(
            f'<tr><td class="num">{rank_cell(rank)}</td><td class="num">{point.x:.5f}</td>'
            f'<td class="num">{point.y:.5f}</td>'
            f'<td class="num">{escape(format_number(row.get("value")))}</td>'
            f'<td>{escape(driver)}</td><td>{escape(details)}</td><td class="nowrap">{escape(sub)}</td></tr>'
        )
    head = (
        '<tr><th class="num">rank</th><th class="num">lon</th><th class="num">lat</th>'
        f'<th class="num">{escape(value_label)}</th><th>driver</th><th>figures</th><th>sub-basin</th></tr>'
    )
    return f'<table id="{table_id}"><caption>{escape(caption)}</caption>{head}{"".join(rows)}</table>'


def _leakage_figures(row: Any) -> tuple[str, str]:
    parts = []
    population = as_number(row.get("population"))
    if population is not None:
        parts.append(f"{format_number(population)} people in the cell")
    collection = as_number(row.get("collection_rate"))
    if collection is not None:
        parts.append(f"{format_percent(collection)} collected")
    p_land = as_number(row.get("p_land"))
    if p_land is not None:
        parts.append(f"{format_percent(p_land)} reaches a river")
    extra = as_number(row.get("observed_extra_kg_yr"))
    if extra:
        parts.append(f"{format_number(extra, 'kg/yr')} observed beyond the model")
    return as_text(row.get("driver")), "; ".join(parts)


def _accumulation_figures(row: Any, barriers: gpd.GeoDataFrame | None, cell_m: float) -> tuple[str, str]:
    driver = as_text(row.get("driver"))
    name = _nearest_barrier(row.geometry, driver, barriers, 1.5 * cell_m)
    parts = []
    load = as_number(row.get("load_kg_yr"))
    if load is not None:
        parts.append(f"load {format_number(load, 'kg/yr')}")
    passes = as_number(row.get("pass_factor"))
    if passes is not None:
        parts.append(f"{format_percent(passes)} passes")
    return (f"{driver}: {name}" if name else driver), "; ".join(parts)


def _nearest_barrier(point: Any, kind: str, barriers: gpd.GeoDataFrame | None, within_m: float) -> str:
    """The name of the barrier of ``kind`` nearest to ``point`` within ``within_m``, or ""."""
    if barriers is None or "name" not in barriers.columns or "kind" not in barriers.columns:
        return ""
    same = barriers[barriers["kind"].astype(str) == kind]
    best, best_m = "", within_m
    for _, barrier in same.iterrows():
        metres = _distance_m(point.x, point.y, barrier.geometry.x, barrier.geometry.y)
        if metres <= best_m:
            best, best_m = as_text(barrier["name"]), metres
    return best


def _distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Distance in metres between two nearby lon/lat points (equirectangular)."""
    dx = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    return 6_371_000.0 * math.hypot(dx, math.radians(lat2 - lat1))


def _containing_name(point: Any, subs: gpd.GeoDataFrame | None) -> str:
    if subs is None:
        return ""
    hits = subs[subs.geometry.covers(point)]
    if len(hits) == 0:
        return ""
    first = hits.iloc[0]
    return as_text(first["name"]) if "name" in hits.columns else as_text(first.get("subbasin"))


def _subbasins_html(layers: Mapping[str, gpd.GeoDataFrame]) -> str:
    subs = layers.get("subbasins")
    chart = (
        subbasin_chart_svg(subs)
        if subs is not None
        else '<p class="missing">No sub-basins in this result (layer "subbasins" missing).</p>'
    )
    sketch = sketch_map_svg(layers)
    return (
        '<section id="subbasins"><h2>Sub-basins and where the hotspots are</h2><div class="chart-map">'
        f"<div>{chart}</div><div>{sketch}</div></div></section>"
    )


def _survey_html(
    coverage: SurveyCoverage | None, fusion: Mapping[str, Any] | None, figure: Path, params: Mapping[str, Any]
) -> str:
    if coverage is None:
        return (
            '<section id="survey"><h2>Survey coverage</h2><p class="missing">No survey: no litter '
            "observations were given, so no cell is surveyed and the model is not calibrated. Add "
            "geotagged photos (<code>plastic-hotspots detect</code>) as <code>observations</code> in the "
            "basin config to check and calibrate it.</p></section>"
        )
    c = coverage
    min_obs = as_text(params.get("min_observations"))
    rows = [
        ("cells with observations", format_number(c.cells)),
        (
            "surveyed cells" + (f" (at least {min_obs} observations)" if min_obs else ""),
            format_number(c.surveyed_cells),
        ),
        ("cells with low effort (too few observations: not surveyed)", format_number(c.low_effort_cells)),
        ("observations (images or frames)", format_number(c.observations)),
        ("litter items counted", format_number(c.items)),
        ("km surveyed", format_number(c.effort_km)),
        (
            "share of the basin area surveyed",
            f"{format_percent(c.surveyed_share)} ({format_number(c.surveyed_km2)} km²)",
        ),
        ("surveyed cells far above the model", format_number(c.far_above_model)),
    ]
    if c.hot_cells is not None:
        test = (
            f"false-discovery rate {format_percent(GI_FDR)}, Benjamini-Hochberg"
            if c.hot_corrected
            else "uncorrected p < 0.05"
        )
        rows.append((f"surveyed cells in a Gi* hot spot ({test})", format_number(c.hot_cells)))
    if c.tracks is not None:
        rows.append(("survey tracks", format_number(c.tracks)))
    if c.first_date:
        rows.append(
            ("captured", c.first_date if c.first_date == c.last_date else f"{c.first_date} to {c.last_date}")
        )
    table = "".join(f'<tr><td>{escape(k)}</td><td class="num">{escape(v)}</td></tr>' for k, v in rows)
    summary = as_text(fusion.get("summary")) if fusion else ""
    calib = (
        f"<p><b>Calibration:</b> {escape(summary)}</p>"
        if summary
        else '<p class="missing">No calibration (fusion.json not found).</p>'
    )
    image = ""
    if figure.is_file():
        uri = "data:image/png;base64," + base64.b64encode(figure.read_bytes()).decode("ascii")
        image = (
            f'<img class="fusion" src="{uri}" alt="Modelled and observed litter rates side by side, and '
            'observed against modelled per cell (fusion.png)">'
        )
    return (
        '<section id="survey"><h2>Survey coverage</h2><div class="two">'
        f'<table id="survey-table">{table}</table><div>{calib}<p class="note">Rates are litter items per '
        "observation, smoothed over neighbouring cells and shrunk towards the area's rate as "
        "cross-validation over the survey's tracks chose, with intervals. A cell that "
        "was not surveyed is unknown, never clean.</p></div></div>"
        f"{image}</section>"
    )


def _provenance_html(provenance: Mapping[str, Any] | None, result_dir: Path) -> str:
    if provenance is None:
        return (
            '<section id="provenance"><h2>Model version and data provenance</h2>'
            f'<p class="missing">provenance.json not found in {escape(result_dir.name)}: how this result was '
            "made (version, parameters, inputs) is unknown.</p></section>"
        )
    params = provenance.get("parameters")
    params = params if isinstance(params, dict) else {}
    inputs = provenance.get("inputs")
    inputs = inputs if isinstance(inputs, list) else []
    input_items = "".join(
        f'<li><b>{escape(path.name)}</b> <span class="note">{escape(str(path.parent))}</span></li>'
        for path in (Path(str(p)) for p in inputs)
    )
    dl = [
        ("version", f"plastic-hotspots {as_text(provenance.get('version')) or 'unknown'}"),
        ("made by", as_text(provenance.get("tool")) or "unknown"),
        ("created", as_text(provenance.get("created_at")) or "unknown"),
    ]
    if provenance.get("model"):
        dl.append(("detector model", as_text(provenance.get("model"))))
    passes = [
        f"{str(k).split('.', 1)[1]} {format_number(v)}"
        for k, v in sorted(params.items())
        if str(k).startswith("barrier_pass.")
    ]
    key = [
        (label, format_number(params[name]) if as_number(params[name]) is not None else as_text(params[name]))
        for name, label in KEY_PARAMETERS
        if name in params
    ]
    if passes:
        key.append(("barrier pass factors", ", ".join(passes)))
    inputs_html = (
        f'<ul class="inputs">{input_items}</ul>'
        if input_items
        else '<p class="missing">No inputs recorded.</p>'
    )
    dl_html = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in dl)
    key_html = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in key)
    return (
        '<section id="provenance"><h2>Model version and data provenance</h2><div class="two"><div>'
        f'<dl class="prov">{dl_html}</dl><h3>Inputs</h3>'
        f"{inputs_html}"
        f'</div><div><h3>Key parameters</h3><dl class="prov">{key_html}</dl>'
        f'<p class="note">All {len(params)} parameters are in provenance.json.</p></div></div></section>'
    )


def _limits_html(items: Sequence[str]) -> str:
    lis = "".join(f"<li>{escape(item)}</li>" for item in items)
    return f'<section id="limits"><h2>Limits</h2><ul class="limits">{lis}</ul></section>'
