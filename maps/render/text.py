"""Text on the map page: number formatting, escaped popup content, the legend, title and footer.

Every string read from result files is HTML-escaped here before it reaches the page.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


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


def as_number(value: Any) -> float | None:
    """A finite float from a cell value, else None (text, None, NaN and infinities)."""
    if value is None or isinstance(value, (str, bytes)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def as_text(value: Any) -> str:
    """A cell value as plain (unescaped) text: "" for None/NaN, whole floats without ".0"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True, slots=True)
class NumberStyle:
    """How :func:`fmt` writes a number that is neither whole nor 100 and above (those: ``1,234``).

    Attributes:
        decimals_from: Magnitude from which a fixed number of decimals is written.
        decimals: Decimals written from ``decimals_from`` up to 100.
        significant: Significant figures written below ``decimals_from``.
    """

    decimals_from: float
    decimals: int
    significant: int


MAP_NUMBERS = NumberStyle(decimals_from=1.0, decimals=2, significant=3)
"""The map's popups and legends: 2 decimals from 1, 3 significant figures below (71.29, 0.241)."""

REPORT_NUMBERS = NumberStyle(decimals_from=10.0, decimals=1, significant=2)
"""The report's tables and figures: 1 decimal from 10, 2 significant figures below (71.3, 0.24)."""


def fmt(value: Any, unit: str = "", style: NumberStyle = MAP_NUMBERS) -> str:
    """A number for people: the map's and the report's numbers, each in its ``style``.

    Whole numbers and those from 100 are written with thousands separators and no decimals
    (``2,194``), smaller ones with the decimals or significant figures of ``style``; "n/a" where
    there is no number.

    Args:
        value: Any cell value; text, None, NaN and infinities give "n/a".
        unit: Written after the number, with a space.
        style: Decimals and significant figures of the numbers below 100 (:data:`MAP_NUMBERS`,
            :data:`REPORT_NUMBERS`).

    Returns:
        The number as text.
    """
    number = as_number(value)
    if number is None:
        return "n/a"
    magnitude = abs(number)
    if number.is_integer() and magnitude < 1e15:
        text = f"{int(number):,}"
    elif magnitude >= 100:
        text = f"{number:,.0f}"
    elif magnitude >= style.decimals_from:
        text = f"{number:.{style.decimals}f}"
    else:
        text = f"{number:.{style.significant}g}"
    return f"{text} {unit}" if unit else text


def percent(value: Any) -> str:
    """A fraction (or a percentage above 1) as a whole percent."""
    number = as_number(value)
    if number is None:
        return "n/a"
    return f"{number * 100:.0f}%" if number <= 1 else f"{number:.0f}%"


def is_surveyed(row: Mapping[str, Any]) -> bool:
    """Whether a density cell has enough observations for a rate (its flag, else a finite rate)."""
    flag = row.get("surveyed")
    if flag is None or (isinstance(flag, float) and math.isnan(flag)):
        return as_number(row.get("rate")) is not None
    return bool(flag)


def hex_colour(rgba: Sequence[float]) -> str:
    """``#rrggbb`` of an RGB(A) colour with channels in [0, 1]."""
    r, g, b = (round(float(c) * 255) for c in rgba[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def ramp_css(cmap_name: str) -> str:
    """A CSS gradient of a matplotlib colour map, for legends."""
    from matplotlib import colormaps

    cmap = colormaps[cmap_name]
    stops = ", ".join(hex_colour(cmap(i / 8)) for i in range(9))
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
        """The legend box: a ``<details>`` whose summary shows and hides the entries (open at first).

        No script is needed to toggle it; the page's script closes it on small screens.
        """
        return (
            '<details class="ph-box ph-legend" id="ph-legend" open>'
            '<summary class="ph-legend-toggle" title="Show or hide the legend"><h2>Legend</h2></summary>'
            f'<div class="ph-legend-body">{"".join(self.entries)}</div></details>'
        )


def title_html(title: str, basin_name: str) -> str:
    """The title box (escaped)."""
    sub = f"<div>Basin: {html.escape(basin_name)}</div>" if basin_name else ""
    return f'<div class="ph-box ph-title"><h1>{html.escape(title)}</h1>{sub}</div>'


def footer_html(provenance: Mapping[str, Any] | None) -> str:
    """The footer with the code version and time the result was made (escaped)."""
    if provenance is None:
        text = "Provenance: provenance.json not found"
    else:
        tool = as_text(provenance.get("tool")) or "plastic-hotspots"
        version = as_text(provenance.get("version")) or "unknown version"
        created = as_text(provenance.get("created_at")) or "unknown time"
        text = f"Made by {tool} (plastic-hotspots {version}) on {created}"
    return f'<div class="ph-box ph-footer">{html.escape(text)}</div>'
