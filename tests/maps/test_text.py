"""One number formatter for the map and the report (maps.render.text.fmt), each in its style."""

from __future__ import annotations

import pytest

from plastic_hotspots.maps.render.figures import format_number
from plastic_hotspots.maps.render.text import MAP_NUMBERS, REPORT_NUMBERS, NumberStyle, fmt


@pytest.mark.parametrize(
    ("value", "on_map", "in_report"),
    [
        (2194.03, "2,194", "2,194"),
        (1234567.0, "1,234,567", "1,234,567"),
        (150.5, "150", "150"),  # from 100: no decimals in either (round half to even)
        (71.29, "71.29", "71.3"),
        (5.123, "5.12", "5.1"),
        (0.2406, "0.241", "0.24"),
        (-0.004567, "-0.00457", "-0.0046"),
        (3.0, "3", "3"),
        (0.0, "0", "0"),
        (2e16, "20,000,000,000,000,000", "20,000,000,000,000,000"),
        (float("nan"), "n/a", "n/a"),
        (float("inf"), "n/a", "n/a"),
        (None, "n/a", "n/a"),
        ("12", "n/a", "n/a"),
    ],
)
def test_the_map_and_the_report_write_numbers_in_their_styles(
    value: object, on_map: str, in_report: str
) -> None:
    assert fmt(value) == fmt(value, style=MAP_NUMBERS) == on_map
    assert fmt(value, style=REPORT_NUMBERS) == format_number(value) == in_report


def test_a_unit_follows_the_number_but_not_a_missing_one() -> None:
    assert fmt(12.5, "kg/yr") == "12.50 kg/yr"
    assert format_number(12.5, "kg/yr") == "12.5 kg/yr"
    assert fmt(None, "kg/yr") == format_number(None, "kg/yr") == "n/a"


def test_a_style_sets_decimals_and_significant_figures() -> None:
    style = NumberStyle(decimals_from=0.1, decimals=3, significant=1)
    assert fmt(0.5, style=style) == "0.500"
    assert fmt(0.0444, style=style) == "0.04"
    assert fmt(42.0, style=style) == "42"
