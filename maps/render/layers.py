"""The survey layers of the map: observed density, Gi* spots, change between surveys, survey photos.

Photos come with thumbnails of the detected litter, or are binned when there are too many.

Colours and bins are computed here, in Python; the page only draws them (see
:mod:`plastic_hotspots.maps.render.columns`).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib import colormaps
from shapely.geometry import box

from plastic_hotspots.maps.params import GI_FDR
from plastic_hotspots.maps.render.columns import (
    ColumnData,
    PopupSpec,
    cells_layer,
    colour_index,
    numbers,
    points_layer,
    texts,
)
from plastic_hotspots.maps.render.text import Legend, fmt, hex_colour, ramp_css

FloatArray = npt.NDArray[np.float64]

LAYER_DENSITY = "Observed density"
LAYER_GI = "Gi* hot and cold spots"
LAYER_CHANGE = "Change between surveys"
LAYER_SURVEY = "Survey photos"

MAX_SURVEY_POINTS = 20_000
"""More survey photos than this are binned into squares (all of them counted; the legend says so)."""
MAX_SURVEY_BINS = 20_000
MAX_DENSITY_CELLS = 60_000
"""More density cells than this are merged into blocks of 2 x 2, 4 x 4, ... cells (the legend says so)."""
MAX_THUMBNAILS = 150
"""Photos (those with the most litter) whose thumbnail, with the detected boxes drawn, goes in the page."""
THUMBNAIL_PX = 320

DENSITY_CMAP = "viridis"
STEPS = 10
LEAKAGE_COLOUR = "#d7301f"
SURVEY_COLOUR = "#737373"
GI_PALETTE = ["#b2182b", "#ef8a62", "#67a9cf", "#2166ac"]  # hot 99 %, hot 95 %, cold 95 %, cold 99 %
CHANGE_PALETTE = ["#2166ac", "#92c5de", "#d9d9d9", "#f4a582", "#b2182b"]
UNSURVEYED_STYLE = {"color": "#8c8c8c", "weight": 0.6, "fillColor": "#d9d9d9", "fillOpacity": 0.55,
                    "dashArray": "3 3", "fill": True}  # fmt: skip
SURVEYED_STYLE = {"color": "#333333", "weight": 0.4, "fillOpacity": 0.65, "fill": True}


def _palette(cmap_name: str, steps: int = STEPS) -> list[str]:
    cmap = colormaps[cmap_name]
    return [hex_colour(cmap((k + 0.5) / steps)) for k in range(steps)]


def _bins(values: FloatArray, steps: int = STEPS) -> tuple[FloatArray, float, bool]:
    """Equal steps from 0 to the 95th percentile (so one extreme cell does not wash out the rest)."""
    finite = values[np.isfinite(values) & (values >= 0)]
    top = float(np.percentile(finite, 95)) if finite.size else 0.0
    clipped = bool(finite.size) and float(finite.max()) > top
    top = top if top > 0 else (float(finite.max()) if finite.size and finite.max() > 0 else 1.0)
    edges = np.asarray(np.linspace(0.0, top, steps + 1), dtype=np.float64)
    edges[-1] = np.inf
    return edges, top, clipped


def class_columns(frame: pd.DataFrame) -> list[str]:
    """Litter classes with a per-class count column ``n_<class>``, in the frame's order."""
    return [c[2:] for c in frame.columns if c.startswith("n_") and len(c) > 2]


def _surveyed(cells: gpd.GeoDataFrame) -> npt.NDArray[np.bool_]:
    rate = (
        cells["rate"].to_numpy(dtype=np.float64) if "rate" in cells.columns else np.full(len(cells), np.nan)
    )
    if "surveyed" in cells.columns:
        flag = cells["surveyed"].astype("boolean").fillna(False).to_numpy(dtype=bool)
        return np.asarray(flag & np.isfinite(rate), dtype=bool)
    if "low_effort" in cells.columns:
        enough = ~cells["low_effort"].astype("boolean").fillna(True).to_numpy(dtype=bool)
        return np.asarray(enough & np.isfinite(rate), dtype=bool)
    return np.asarray(np.isfinite(rate), dtype=bool)


def _column(cells: pd.DataFrame, name: str) -> FloatArray:
    if name not in cells.columns:
        return np.full(len(cells), np.nan)
    return pd.to_numeric(cells[name], errors="coerce").to_numpy(dtype=np.float64)


def coarsen_cells(cells: gpd.GeoDataFrame, limit: int) -> tuple[gpd.GeoDataFrame, int]:
    """Merge grid cells into blocks of ``f x f`` (f = 2, 4, ...) until at most ``limit`` remain.

    Counts (observations, items, effort, per-class items) are summed; a block's rate is the
    observation-weighted mean of its surveyed cells' rates, its interval left out. Returns the
    cells unchanged (and factor 1) when they are few enough or have no ``row``/``col``.
    """
    if len(cells) <= limit or not {"row", "col"} <= set(cells.columns):
        return cells, 1
    factor = 2
    while True:
        keys = (cells["row"] // factor).astype(np.int64) * 10_000_019 + (cells["col"] // factor).astype(
            np.int64
        )
        if keys.nunique() <= limit:
            break
        factor *= 2
    frame = cells.copy()
    surveyed = _surveyed(frame)
    obs = _column(frame, "observations")
    frame["_weighted"] = np.where(surveyed, _column(frame, "rate") * obs, 0.0)
    frame["_surveyed_obs"] = np.where(surveyed, obs, 0.0)
    frame["_key"] = keys.to_numpy()
    sums = [c for c in ("observations", "effort_km", "items", "_weighted", "_surveyed_obs") if c in frame]
    sums += [f"n_{name}" for name in class_columns(frame)]
    grouped = frame.groupby("_key", sort=False)
    blocks = grouped[sums].sum()
    blocks["geometry"] = grouped.geometry.agg(lambda g: box(*g.total_bounds))
    blocks["rate"] = np.where(
        blocks["_surveyed_obs"] > 0,
        blocks["_weighted"] / blocks["_surveyed_obs"].where(blocks["_surveyed_obs"] > 0, 1.0),
        np.nan,
    )
    blocks["surveyed"] = blocks["_surveyed_obs"] > 0
    out = gpd.GeoDataFrame(blocks.drop(columns=["_weighted", "_surveyed_obs"]).reset_index(drop=True),
                           geometry="geometry", crs=cells.crs)  # fmt: skip
    return out, factor


UNEXPLAINED_NOTE = (
    ". The input layers do not explain this survey (on held-out tracks the calibrated model predicts "
    "no better than one area-wide rate): observed litter is shown as a density only, not as kg/yr"
)
"""Said beside the density where the run's calibration found the layers explain nothing of the survey."""


def density_layer(
    cells: gpd.GeoDataFrame, legend: Legend, pane: str, *, explained: bool = True
) -> ColumnData:
    """Observed density cells: rate colours (all litter, and per class for the class filter)."""
    total = len(cells)
    cells, factor = coarsen_cells(cells, MAX_DENSITY_CELLS)
    if factor > 1:
        legend.add(
            f"{LAYER_DENSITY}: merged",
            note=f"{total:,} cells shown as {len(cells):,} blocks of {factor} x {factor} cells (too many "
            "to draw one by one; every cell counted; block rate = observation-weighted mean, no interval)",
        )
    surveyed = _surveyed(cells)
    rate = np.where(surveyed, _column(cells, "rate"), np.nan)
    edges, top, clipped = _bins(rate)
    palette = _palette(DENSITY_CMAP)
    observations = _column(cells, "observations")
    fills: dict[str, list[int]] = {}
    for name in class_columns(cells):
        class_rate = np.where(
            surveyed & (observations > 0), _column(cells, f"n_{name}") / observations, np.nan
        )
        fills[name] = colour_index(class_rate, _bins(class_rate)[0])
    status = np.where(surveyed, "", "not surveyed: too few observations to estimate a rate")
    far = cells["far_above_model"].fillna(False).to_numpy(dtype=bool) if "far_above_model" in cells else None
    if far is not None:
        status = np.where(far, "far above the model: a source the layers do not show", status)
    columns: dict[str, list[Any]] = {
        "rate": numbers(rate),
        "rate_lo": numbers(np.where(surveyed, _column(cells, "rate_lo"), np.nan)),
        "rate_hi": numbers(np.where(surveyed, _column(cells, "rate_hi"), np.nan)),
        "modelled": numbers(_column(cells, "modelled_rate")),
        "observations": numbers(observations),
        "effort_km": numbers(_column(cells, "effort_km"), 3),
        "items": numbers(_column(cells, "items")),
        "status": texts(status.tolist()),
    }
    popup = (
        PopupSpec("Observed litter density")
        .text("Status", "status")
        .num("Rate", "rate", "items/photo")
        .range("Interval", "rate_lo", "rate_hi")
        .num("Modelled", "modelled", "items/photo")
        .num("Observations", "observations")
        .num("Effort", "effort_km", "km")
        .num("Items seen", "items")
    )
    legend.add(
        LAYER_DENSITY,
        ramp=ramp_css(DENSITY_CMAP) if surveyed.any() else "",
        ends=(fmt(0.0), ("≥ " if clipped else "") + fmt(top)) if surveyed.any() else None,
        note="litter items per photo, effort-normalised" + (
            "; with a class chosen in the filter, that class's rate on its own scale" if fills else ""
        ) + ("" if explained else UNEXPLAINED_NOTE),
    )  # fmt: skip
    if (~surveyed).any():
        legend.add(
            "not surveyed",
            symbol='<span class="ph-swatch ph-unsurveyed"></span>',
            note="too few observations to estimate a rate (no evidence either way)",
        )
    return cells_layer(
        LAYER_DENSITY,
        list(cells.geometry),
        columns,
        fill=colour_index(rate, edges),
        palette=palette,
        style=[0 if s else 1 for s in surveyed.tolist()],
        styles=[SURVEYED_STYLE, UNSURVEYED_STYLE],
        popup=popup,
        pane=pane,
        fills=fills or None,
    )


def gi_layer(cells: gpd.GeoDataFrame, legend: Legend, pane: str) -> ColumnData | None:
    """Cells that are significant Getis-Ord Gi* hot or cold spots, or None if none are.

    Significant after the false-discovery correction (``gi_q`` at most :data:`GI_FDR`) where the
    layer has q-values; files without them are drawn by the uncorrected p below 0.05, and the legend
    says which.
    """
    if "gi_z" not in cells.columns:
        return None
    z, p = _column(cells, "gi_z"), _column(cells, "gi_p")
    corrected = "gi_q" in cells.columns
    q = _column(cells, "gi_q") if corrected else p
    what = (
        f"false-discovery rate {GI_FDR:.0%} over the {int(np.isfinite(q).sum())} cells tested"
        if corrected
        else "uncorrected p < 0.05"
    )
    keep = _surveyed(cells) & np.isfinite(z) & np.isfinite(q) & (q <= GI_FDR)
    if not keep.any():
        legend.add(LAYER_GI, note=f"no significant hot or cold spot (Gi*, {what})")
        return None
    sub = cells[keep]
    z, p, q = z[keep], p[keep], q[keep]
    strong = q <= GI_FDR / 5
    fill = np.where(z > 0, np.where(strong, 0, 1), np.where(strong, 3, 2)).astype(int).tolist()
    kind = np.where(z > 0, "hot spot", "cold spot")
    columns: dict[str, list[Any]] = {
        "kind": texts(kind.tolist()),
        "z": numbers(z, 3),
        "p": numbers(p, 2),
        "q": numbers(q, 2),
        "rate": numbers(_column(sub, "rate")),
    }
    popup = (
        PopupSpec("Getis-Ord Gi*")
        .text("Cluster", "kind")
        .num("z-score", "z")
        .num("p-value (uncorrected)", "p")
        .num("q-value (false-discovery corrected)" if corrected else "p-value used", "q")
        .num("Rate", "rate", "items/photo")
    )
    swatches = "".join(f'<span class="ph-swatch" style="background:{c}"></span>' for c in GI_PALETTE)
    legend.add(
        LAYER_GI,
        symbol=swatches,
        note=f"clusters of high (red) or low (blue) litter rates; drawn: {what} (dark: 5 times stricter)",
    )
    style = {"color": "#222222", "weight": 1.2, "fillOpacity": 0.7, "fill": True}
    return cells_layer(
        LAYER_GI,
        list(sub.geometry),
        columns,
        fill=fill,
        palette=GI_PALETTE,
        style=[0] * len(sub),
        styles=[style],
        popup=popup,
        pane=pane,
    )


def change_layer(
    before: gpd.GeoDataFrame, after: gpd.GeoDataFrame, labels: tuple[str, str], legend: Legend, pane: str
) -> ColumnData | None:
    """Cells surveyed in both surveys, coloured by the change in rate.

    A change counts as clear only when the two intervals do not overlap.

    The surveys are matched by grid cell (``row``/``col``), so both must come from the same basin
    config (same grid).
    """
    keys = ["row", "col"]
    if not all(k in before.columns and k in after.columns for k in keys):
        return None
    b = before[_surveyed(before)][[*keys, "rate", "rate_lo", "rate_hi"]]
    joined = after[_surveyed(after)].merge(b, on=keys, suffixes=("", "_before"))
    if joined.empty:
        legend.add(LAYER_CHANGE, note=f"no cell was surveyed in both {labels[0]} and {labels[1]}")
        return None
    rate_b, rate_a = _column(joined, "rate_before"), _column(joined, "rate")
    lo_b, hi_b = _column(joined, "rate_lo_before"), _column(joined, "rate_hi_before")
    lo_a, hi_a = _column(joined, "rate_lo"), _column(joined, "rate_hi")
    ratio = rate_a / np.maximum(rate_b, 1e-9)
    up, down = lo_a > hi_b, hi_a < lo_b
    fill = np.full(len(joined), 2)
    fill[up] = np.where(ratio[up] >= 2, 4, 3)
    fill[down] = np.where(ratio[down] <= 0.5, 0, 1)
    verdict = np.where(up, "more litter", np.where(down, "less litter", "no clear change"))
    columns: dict[str, list[Any]] = {
        "before": numbers(rate_b),
        "before_lo": numbers(lo_b),
        "before_hi": numbers(hi_b),
        "after": numbers(rate_a),
        "after_lo": numbers(lo_a),
        "after_hi": numbers(hi_a),
        "ratio": numbers(ratio, 3),
        "verdict": texts(verdict.tolist()),
    }
    popup = (
        PopupSpec("Change in litter rate")
        .text("Verdict", "verdict")
        .num(f"Before ({labels[0]})", "before", "items/photo")
        .range("Interval before", "before_lo", "before_hi")
        .num(f"After ({labels[1]})", "after", "items/photo")
        .range("Interval after", "after_lo", "after_hi")
        .num("After / before", "ratio")
    )
    swatches = "".join(f'<span class="ph-swatch" style="background:{c}"></span>' for c in CHANGE_PALETTE)
    legend.add(
        LAYER_CHANGE,
        symbol=swatches,
        note=(
            f"{labels[0]} to {labels[1]}: blue less, red more litter per photo (dark: halved or doubled); "
            "grey: the intervals overlap, no clear change"
        ),
    )
    style = {"color": "#333333", "weight": 0.5, "fillOpacity": 0.75, "fill": True}
    return cells_layer(
        LAYER_CHANGE,
        list(joined.geometry),
        columns,
        fill=fill.tolist(),
        palette=CHANGE_PALETTE,
        style=[0] * len(joined),
        styles=[style],
        popup=popup,
        pane=pane,
    )


def survey_day(values: pd.Series) -> list[int | None]:
    """Capture day of each photo as days since 1970-01-01 (local date as written), None if unknown."""
    text = values.fillna("").astype(str).str.slice(0, 10)
    days = pd.to_datetime(text, errors="coerce", format="%Y-%m-%d")
    epoch = (days - pd.Timestamp("1970-01-01")).dt.days
    return [None if pd.isna(d) else int(d) for d in epoch]


@dataclass(frozen=True, slots=True)
class SurveyLayer:
    """The survey photos layer and what the filter box needs to know about it."""

    layer: ColumnData
    first_day: str | None
    last_day: str | None
    classes: list[str]
    binned: bool


def survey_layer(
    points: gpd.GeoDataFrame,
    detections: gpd.GeoDataFrame | None,
    legend: Legend,
    pane: str,
) -> SurveyLayer:
    """Survey photos, one marker each (with thumbnails for the most littered ones), or binned squares."""
    total = len(points)
    if total > MAX_SURVEY_POINTS:
        return _binned_survey(points, legend, pane)
    items = _column(points, "items")
    classes = class_columns(points)
    columns: dict[str, list[Any]] = {
        "items": numbers(items),
        "image": texts(points["image"].tolist()) if "image" in points.columns else [""] * total,
        "captured": texts(points["captured_at"].tolist())
        if "captured_at" in points.columns
        else [""] * total,
        "track": texts(points["track"].tolist()) if "track" in points.columns else [""] * total,
    }
    for name in classes:
        columns[f"n_{name}"] = numbers(_column(points, f"n_{name}"))
    popup = PopupSpec("Survey photo").num("Items", "items")
    for name in classes:
        popup.num(name, f"n_{name}")
    popup.text("Captured", "captured").text("Image", "image").text("Track", "track")
    thumbs = thumbnails(points, detections)
    styles = [
        {"radius": 3, "color": SURVEY_COLOUR, "weight": 0.6, "fillColor": SURVEY_COLOUR, "fillOpacity": 0.9},
        {
            "radius": 3.5,
            "color": SURVEY_COLOUR,
            "weight": 0.6,
            "fillColor": LEAKAGE_COLOUR,
            "fillOpacity": 0.9,
        },
    ]
    day = survey_day(points["captured_at"]) if "captured_at" in points.columns else None
    known = [d for d in day or [] if d is not None]
    first = str(pd.Timestamp("1970-01-01") + pd.Timedelta(days=min(known)))[:10] if known else None
    last = str(pd.Timestamp("1970-01-01") + pd.Timedelta(days=max(known)))[:10] if known else None
    note = f"all {total:,} photos; red: litter seen, grey: none"
    if thumbs:
        note += f"; the {len(thumbs):,} with most litter show their photo with the detections boxed"
    legend.add(
        LAYER_SURVEY,
        symbol=f'<span class="ph-dot" style="width:6px;height:6px;background:{LEAKAGE_COLOUR}"></span>',
        note=note,
    )
    layer = points_layer(
        LAYER_SURVEY,
        points.geometry.x.to_numpy(),
        points.geometry.y.to_numpy(),
        columns,
        style=[1 if v > 0 else 0 for v in np.nan_to_num(items).tolist()],
        styles=styles,
        popup=popup,
        pane=pane,
        day=day if known else None,
        thumbs=thumbs,
    )
    return SurveyLayer(layer, first, last, classes, binned=False)


def _binned_survey(points: gpd.GeoDataFrame, legend: Legend, pane: str) -> SurveyLayer:
    """Square bins (metres, in the survey's UTM zone) doubled in size until there are few enough."""
    utm = points.estimate_utm_crs()
    xy = points.to_crs(utm)
    x, y = xy.geometry.x.to_numpy(), xy.geometry.y.to_numpy()
    items = np.nan_to_num(_column(points, "items"))
    size = 50.0
    while True:
        keys = np.floor(x / size).astype(np.int64) * 1_000_003 + np.floor(y / size).astype(np.int64)
        unique, inverse = np.unique(keys, return_inverse=True)
        if unique.size <= MAX_SURVEY_BINS:
            break
        size *= 2.0
    photos = np.bincount(inverse).astype(np.float64)
    litter = np.bincount(inverse, weights=items)
    with_litter = np.bincount(inverse, weights=(items > 0).astype(np.float64))
    first = np.zeros(unique.size, dtype=np.int64)
    first[inverse[::-1]] = np.arange(len(x))[::-1]  # one photo in each bin, for its position
    bx = np.floor(x[first] / size) * size
    by = np.floor(y[first] / size) * size
    geoms = gpd.GeoSeries([box(a, b, a + size, b + size) for a, b in zip(bx, by, strict=True)], crs=utm)
    rate = litter / photos
    edges, top, clipped = _bins(rate)
    columns = {
        "photos": numbers(photos),
        "items": numbers(litter),
        "share": numbers(100.0 * with_litter / photos, 3),
        "rate": numbers(rate),
    }
    popup = (
        PopupSpec(f"Survey photos in a {size:,.0f} m square")
        .num("Photos", "photos")
        .num("Items seen", "items")
        .num("Photos with litter", "share", "%")
        .num("Items per photo (raw)", "rate")
    )
    legend.add(
        LAYER_SURVEY,
        ramp=ramp_css("Greys"),
        ends=(fmt(0.0), ("≥ " if clipped else "") + fmt(top)),
        note=(
            f"{len(points):,} photos in {unique.size:,} squares of {size:,.0f} m (too many to draw one by "
            "one; every photo is counted): raw items per photo"
        ),
    )
    style = {"color": "#555555", "weight": 0.3, "fillOpacity": 0.6, "fill": True}
    layer = cells_layer(
        LAYER_SURVEY,
        list(geoms.to_crs("EPSG:4326")),
        columns,
        fill=colour_index(rate, edges),
        palette=_palette("Greys"),
        style=[0] * unique.size,
        styles=[style],
        popup=popup,
        pane=pane,
    )
    return SurveyLayer(layer, None, None, [], binned=True)


def thumbnails(points: gpd.GeoDataFrame, detections: gpd.GeoDataFrame | None) -> dict[int, str]:
    """JPEG data URIs of the photos with most litter (readable files only), detections boxed.

    Keys are row positions in ``points``. Photos that cannot be read (moved, videos, tiles) are
    skipped: the popup then shows the figures without a picture.
    """
    if "path" not in points.columns or MAX_THUMBNAILS <= 0:
        return {}
    from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

    order = np.argsort(-np.nan_to_num(_column(points, "items")), kind="stable")
    boxes: Mapping[str, pd.DataFrame] = {}
    if detections is not None and "image" in detections.columns:
        boxes = {str(k): g for k, g in detections.groupby("image")}
    out: dict[int, str] = {}
    images = points["image"].astype(str).tolist() if "image" in points.columns else [""] * len(points)
    paths = points["path"].fillna("").astype(str).tolist()
    for pos in order.tolist():
        if len(out) >= MAX_THUMBNAILS:
            break
        path = Path(paths[pos])
        if not paths[pos] or not path.is_file():
            continue
        try:
            with Image.open(path) as raw:
                upright = ImageOps.exif_transpose(raw).convert("RGB")
        except (OSError, UnidentifiedImageError, ValueError):
            continue
        full_w = upright.size[0]
        upright.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        scale = upright.size[0] / full_w
        draw = ImageDraw.Draw(upright)
        for _, det in boxes.get(images[pos], pd.DataFrame()).iterrows():
            x1, y1, x2, y2 = (float(det[k]) * scale for k in ("x1", "y1", "x2", "y2"))
            if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
                continue
            draw.rectangle((x1, y1, x2, y2), outline=(255, 40, 40), width=2)
            draw.text((x1 + 2, max(0.0, y1 - 11)), str(det.get("class_name", "")), fill=(255, 255, 0))
        buffer = io.BytesIO()
        upright.save(buffer, format="JPEG", quality=70)
        out[pos] = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return out


def filter_box_html(survey: SurveyLayer | None, density_classes: list[str]) -> str:
    """The date and litter-class filter box, or "" when the data has neither dates nor classes."""
    classes = sorted(set(density_classes) | set(survey.classes if survey else []))
    has_dates = survey is not None and survey.first_day is not None
    if not classes and not has_dates:
        return ""
    import html

    parts = ['<div class="ph-box ph-filter" id="ph-filter"><h2>Filter</h2>']
    if has_dates and survey is not None:
        first, last = html.escape(survey.first_day or ""), html.escape(survey.last_day or "")
        parts.append(
            f'<label>From <input type="date" name="from" value="{first}" min="{first}" max="{last}"></label> '
            f'<label>to <input type="date" name="to" value="{last}" min="{first}" max="{last}"></label>'
        )
    else:
        parts.append('<input type="hidden" name="from" value=""><input type="hidden" name="to" value="">')
    if classes:
        options = "".join(f'<option value="{html.escape(c)}">{html.escape(c)}</option>' for c in classes)
        select = f'<select name="cls"><option value="">all classes</option>{options}</select>'
        parts.append(f"<label>Litter {select}</label>")
    if survey is not None and not survey.binned:
        parts.append('<div class="ph-note ph-filter-count"></div>')
    parts.append("</div>")
    return "".join(parts)
