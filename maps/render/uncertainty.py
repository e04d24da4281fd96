"""The report's uncertainty: totals with their 5-95 % range, unstable hotspot ranks, the sensitivity table.

Reads ``uncertainty.json`` of a result directory (written by ``plastic-hotspots hotspots``; see
:mod:`plastic_hotspots.maps.science.uncertainty`) and writes what it says for people: a total as
"2.0 million kg/yr (1.2-3.1 million)", two significant figures, a rank as "3 (2-7), unstable" (en
dashes in the page), and a small table of how far each parameter, from the low to the high end of its
range, moves the totals. Every text from the file is HTML-escaped here. A file without draws (the large
mode, or draws: 0) gives its note instead; a missing or unreadable one says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from plastic_hotspots.maps.io.results import UNCERTAINTY_JSON, read_json
from plastic_hotspots.maps.render.figures import escape
from plastic_hotspots.maps.render.text import as_number, as_text

TOTAL_LABELS = {
    "mismanaged_kg_yr": "mismanaged on land",
    "into_rivers_kg_yr": "into rivers",
    "retained_kg_yr": "retained",
    "exported_kg_yr": "exported",
}
SCALES = ((1e9, "billion"), (1e6, "million"))
DASH = "\u2013"
"""The en dash between the ends of a range."""


def read_uncertainty(result_dir: Path) -> dict[str, Any] | None:
    """``uncertainty.json`` of a result directory, or None when it is missing or unreadable."""
    return read_json(UNCERTAINTY_JSON.path(result_dir))


def has_draws(document: Mapping[str, Any] | None) -> bool:
    """Whether the document holds parameter draws (not only a note)."""
    return document is not None and (as_number(document.get("draws")) or 0) > 0


def two_significant(value: float, divisor: float = 1.0) -> str:
    """``value / divisor`` with two significant figures, thousands separated: 2.0, 0.41, 45, 4,600."""
    scaled = value / divisor
    if scaled == 0 or not math.isfinite(scaled):
        return "0" if scaled == 0 else "n/a"
    rounded = float(f"{scaled:.2g}")
    decimals = max(0, 1 - math.floor(math.log10(abs(rounded))))
    return f"{rounded:,.{decimals}f}"


def format_range(value: float, low: float, high: float, unit: str = "") -> str:
    """A value and its range, two significant figures: "2.0 million kg/yr (1.2-3.1 million)" (an en dash)."""
    divisor, word = next(((d, w) for d, w in SCALES if abs(value) >= d), (1.0, ""))
    suffix = f" {word}" if word else ""
    main = f"{two_significant(value, divisor)}{suffix}" + (f" {unit}" if unit else "")
    return f"{main} ({two_significant(low, divisor)}{DASH}{two_significant(high, divisor)}{suffix})"


def total_range(document: Mapping[str, Any] | None, name: str) -> tuple[float, float, float] | None:
    """A total's value, 5th and 95th percentile from the document, or None where it has none."""
    if document is None or not has_draws(document):
        return None
    totals = document.get("totals")
    entry = totals.get(name) if isinstance(totals, dict) else None
    if not isinstance(entry, dict):
        return None
    figures = (as_number(entry.get("value")), as_number(entry.get("p5")), as_number(entry.get("p95")))
    if figures[0] is None or figures[1] is None or figures[2] is None:
        return None
    return figures[0], figures[1], figures[2]


def rank_html(document: Mapping[str, Any] | None, kind: str, rank: str) -> str:
    """A hotspot's rank for the table, with its 5-95 % range and "unstable" where it is (HTML)."""
    number = as_number(int(rank)) if rank.isdigit() else None
    if document is None or not has_draws(document) or number is None:
        return escape(rank)
    hotspots = document.get("hotspots")
    for entry in hotspots if isinstance(hotspots, list) else []:
        if not isinstance(entry, dict) or entry.get("kind") != kind or as_number(entry.get("rank")) != number:
            continue
        low, high = as_number(entry.get("rank_p5")), as_number(entry.get("rank_p95"))
        if low is None or high is None:
            break
        top_n = as_number(document.get("top_n"))
        high_text = "unranked" if top_n is not None and high > top_n else f"{high:.0f}"
        text = escape(f"{rank} ({low:.0f}{DASH}{high_text})")
        if entry.get("unstable") is True:
            return f'{text}, <span class="unstable">unstable</span>'
        return text
    return escape(rank)


def _pair(values: Any) -> str:
    if not isinstance(values, list) or len(values) != 2:
        return "n/a"
    low, high = as_number(values[0]), as_number(values[1])
    if low is None or high is None:
        return "n/a"
    return f"{two_significant(low)} {DASH} {two_significant(high)}"


def uncertainty_html(document: Mapping[str, Any] | None) -> str:
    """The report's section on the uncertainty of the figures: how they were drawn and the sensitivity."""
    head = '<section id="uncertainty"><h2>How sure are these figures?</h2>'
    if document is None:
        return (
            f'{head}<p class="missing">uncertainty.json not found: the figures carry no range over the '
            "model's parameters.</p></section>"
        )
    if not has_draws(document):
        note = as_text(document.get("note")) or "no parameter sets were drawn"
        return f'{head}<p class="missing">No ranges: {escape(note)}.</p></section>'
    draws, seed = as_text(document.get("draws")), as_text(document.get("seed"))
    rule = as_text(document.get("unstable_rule"))
    rows = []
    sensitivity = document.get("sensitivity")
    parameters = document.get("parameters")
    parameters = parameters if isinstance(parameters, dict) else {}
    for entry in sensitivity if isinstance(sensitivity, list) else []:
        if not isinstance(entry, dict):
            continue
        name = as_text(entry.get("parameter"))
        low, high = as_number(entry.get("low")), as_number(entry.get("high"))
        spec = parameters.get(name)
        point = as_number(spec.get("point")) if isinstance(spec, dict) else None
        span = f"{low:g} {DASH} {high:g}" if low is not None and high is not None else "n/a"
        as_run = f"{point:g}" if point is not None else ""
        totals = entry.get("totals")
        totals = totals if isinstance(totals, dict) else {}
        rows.append(
            f"<tr><td>{escape(name)}</td>"
            f'<td class="num">{escape(span)}</td><td class="num">{escape(as_run)}</td>'
            f'<td class="num">{escape(_pair(totals.get("into_rivers_kg_yr")))}</td>'
            f'<td class="num">{escape(_pair(totals.get("exported_kg_yr")))}</td>'
            f'<td class="num">{escape(as_text(entry.get("rank_changes")))}</td></tr>'
        )
    table = (
        '<table id="sensitivity-table"><caption>Sensitivity: each parameter at the low and the high end '
        "of its range, the others as run (largest effect on the plastic entering rivers first)</caption>"
        '<tr><th>parameter</th><th class="num">range</th><th class="num">as run</th>'
        '<th class="num">into rivers, kg/yr</th><th class="num">exported, kg/yr</th>'
        '<th class="num">hotspots ranked otherwise</th></tr>' + "".join(rows) + "</table>"
    )
    return (
        f'{head}<p class="note">Every transport constant, pass factor and waste figure of the model is a '
        f"documented guess. {escape(draws)} parameter sets were drawn over their plausible ranges (Latin "
        f"hypercube, seed {escape(seed)}); a figure in brackets is the 5{DASH}95 % range over them. A "
        f"hotspot is marked unstable when {escape(rule) or 'its rank moves much'}.</p>{table}</section>"
    )
