"""Parameter uncertainty: draws on the demo basin, uncertainty.json, the report and the docs."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from plastic_hotspots.errors import ConfigError
from plastic_hotspots.maps.config import BasinConfig, load_config
from plastic_hotspots.maps.demo import generate_demo_basin
from plastic_hotspots.maps.io.results import UNCERTAINTY_JSON
from plastic_hotspots.maps.params import (
    UNCERTAIN_PARAMETERS,
    HotspotParams,
    ParameterRange,
    UncertaintySettings,
    point_value,
)
from plastic_hotspots.maps.render.report import render_report
from plastic_hotspots.maps.render.uncertainty import format_range, two_significant
from plastic_hotspots.maps.science.uncertainty import TOTALS, draw_values
from plastic_hotspots.maps.wholegrid.run import run_hotspots

ROOT = Path(__file__).resolve().parents[2]
DRAWS = 8


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> BasinConfig:
    return load_config(generate_demo_basin(tmp_path_factory.mktemp("uncertainty-demo")))


def _run(config: BasinConfig, out: Path, **settings: Any) -> dict[str, Any]:
    run_hotspots(replace(config, uncertainty=replace(config.uncertainty, **settings)), out)
    document: dict[str, Any] = json.loads(UNCERTAINTY_JSON.path(out).read_text(encoding="utf-8"))
    return document


@pytest.fixture(scope="module")
def result(config: BasinConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("uncertainty-run")
    _run(config, out, draws=DRAWS, seed=3)
    return out


@pytest.fixture(scope="module")
def document(result: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(UNCERTAINTY_JSON.path(result).read_text(encoding="utf-8"))
    return loaded


def test_every_range_contains_the_default() -> None:
    params = HotspotParams()
    for r in UNCERTAIN_PARAMETERS:
        assert r.low < r.high, r.name
        assert r.contains(point_value(params, r.name)), r.name
        assert r.doc, r.name
    assert len({r.name for r in UNCERTAIN_PARAMETERS}) == len(UNCERTAIN_PARAMETERS)


def test_a_configured_value_outside_its_range_widens_the_range() -> None:
    params = HotspotParams(land_lambda_m=5000.0)
    wide = {r.name: r for r in UncertaintySettings().around(params)}["land_lambda_m"]
    assert (wide.low, wide.high) == (100.0, 5000.0)


def test_bad_settings_are_refused_with_the_known_names() -> None:
    with pytest.raises(ConfigError, match="unknown uncertain parameter 'lambda'"):
        UncertaintySettings.from_mapping({"ranges": {"lambda": [1, 2]}})
    with pytest.raises(ConfigError, match="low <= high"):
        UncertaintySettings.from_mapping({"ranges": {"river_mu_km": [80, 20]}})
    with pytest.raises(ConfigError, match="draws must be a whole number"):
        UncertaintySettings.from_mapping({"draws": -1})
    with pytest.raises(ConfigError, match="unknown uncertainty key"):
        UncertaintySettings.from_mapping({"n": 3})
    settings = UncertaintySettings.from_mapping({"draws": 4, "seed": 9, "ranges": {"river_mu_km": [20, 80]}})
    assert (settings.draws, settings.seed) == (4, 9)
    assert {r.name: (r.low, r.high) for r in settings.ranges}["river_mu_km"] == (20.0, 80.0)


def test_latin_hypercube_draws_are_seeded_and_stratified() -> None:
    a = draw_values(UNCERTAIN_PARAMETERS, 10, seed=1)
    assert a == draw_values(UNCERTAIN_PARAMETERS, 10, seed=1)
    assert a != draw_values(UNCERTAIN_PARAMETERS, 10, seed=2)
    mu = sorted(d["river_mu_km"] for d in a)
    r = {p.name: p for p in UNCERTAIN_PARAMETERS}["river_mu_km"]
    for i, value in enumerate(mu):  # one draw in each tenth of the (log) range
        assert r.at(i / 10) <= value <= r.at((i + 1) / 10)


def test_uncertainty_json_is_written_and_every_range_contains_its_point(document: dict[str, Any]) -> None:
    assert document["draws"] == DRAWS
    assert document["seed"] == 3
    assert set(document["parameters"]) == {r.name for r in UNCERTAIN_PARAMETERS}
    for name in TOTALS:
        total = document["totals"][name]
        assert total["p5"] <= total["value"] <= total["p95"], name
        assert total["p5"] <= total["p50"] <= total["p95"], name
    into = document["totals"]["into_rivers_kg_yr"]
    assert into["p95"] > 1.2 * into["p5"]  # not degenerate
    assert len(document["hotspots"]) == 20  # 10 of each kind on the demo
    for spot in document["hotspots"]:
        assert (
            spot["rank_min"] <= spot["rank_p5"] <= spot["rank"] <= spot["rank_p95"] <= spot["rank_max"] <= 11
        )
        span_unstable = spot["rank_p95"] - spot["rank_p5"] > 3 or spot["out_of_top_share"] > 0.1
        assert spot["unstable"] == span_unstable


def test_the_totals_value_is_the_runs_own(result: Path, document: dict[str, Any]) -> None:
    provenance = json.loads((result / "provenance.json").read_text(encoding="utf-8"))
    exported = document["totals"]["exported_kg_yr"]["value"]
    assert exported == pytest.approx(provenance["parameters"]["exported_kg_yr"], rel=1e-12)
    totals = document["totals"]
    assert totals["into_rivers_kg_yr"]["value"] == pytest.approx(
        totals["retained_kg_yr"]["value"] + exported, rel=1e-3
    )


def test_sensitivity_lists_every_parameter_sorted_by_its_effect(document: dict[str, Any]) -> None:
    rows = document["sensitivity"]
    assert [row["parameter"] for row in rows] != []
    assert {row["parameter"] for row in rows} == {r.name for r in UNCERTAIN_PARAMETERS}
    moves = [
        abs(row["totals"]["into_rivers_kg_yr"][1] - row["totals"]["into_rivers_kg_yr"][0]) for row in rows
    ]
    assert moves == sorted(moves, reverse=True)
    by_name = {row["parameter"]: row for row in rows}
    assert (
        by_name["land_lambda_m"]["totals"]["into_rivers_kg_yr"][0]
        < by_name["land_lambda_m"]["totals"]["into_rivers_kg_yr"][1]
    )  # carrying further over land brings more into the rivers
    river = by_name["river_mu_km"]["totals"]
    assert river["into_rivers_kg_yr"][0] == river["into_rivers_kg_yr"][1]  # in-river decay: after entry
    assert river["exported_kg_yr"][0] < river["exported_kg_yr"][1]


def test_draws_are_reproducible_with_a_seed_and_differ_with_another(
    config: BasinConfig, document: dict[str, Any], tmp_path: Path
) -> None:
    again = _run(config, tmp_path / "again", draws=DRAWS, seed=3)
    assert again["totals"] == document["totals"]
    assert again["hotspots"] == document["hotspots"]
    other = _run(config, tmp_path / "other", draws=DRAWS, seed=4)
    assert other["totals"]["into_rivers_kg_yr"]["p5"] != document["totals"]["into_rivers_kg_yr"]["p5"]
    assert other["totals"]["into_rivers_kg_yr"]["value"] == document["totals"]["into_rivers_kg_yr"]["value"]


def test_a_collapsed_range_moves_nothing(config: BasinConfig, tmp_path: Path) -> None:
    params = config.params
    collapsed = tuple(
        ParameterRange(r.name, point_value(params, r.name), point_value(params, r.name), r.scale, r.doc)
        if r.name in ("land_lambda_m", "generation_factor")
        else r
        for r in UNCERTAIN_PARAMETERS
    )
    doc = _run(config, tmp_path, draws=4, seed=1, ranges=collapsed)
    rows = {row["parameter"]: row for row in doc["sensitivity"]}
    for name in ("land_lambda_m", "generation_factor"):
        assert rows[name]["rank_changes"] == 0
        for total, (low, high) in rows[name]["totals"].items():
            assert low == high == doc["totals"][total]["value"], (name, total)
    assert (
        rows["river_mu_km"]["rank_changes"] > 0
        or rows["river_mu_km"]["totals"]["exported_kg_yr"][0]
        != (rows["river_mu_km"]["totals"]["exported_kg_yr"][1])
    )


def test_zero_draws_writes_a_note(config: BasinConfig, tmp_path: Path) -> None:
    doc = _run(config, tmp_path, draws=0)
    assert doc["draws"] == 0
    assert doc["note"]
    assert doc["totals"] == {}
    assert doc["sensitivity"] == []
    page = render_report(tmp_path, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "No ranges: no parameter sets drawn" in page
    assert "unstable</span>" not in page


def test_the_report_shows_ranges_unstable_ranks_and_the_sensitivity_table(
    result: Path, tmp_path: Path
) -> None:
    spoiled = tmp_path / "hotspots"
    shutil.copytree(result, spoiled)
    doc = json.loads(UNCERTAINTY_JSON.path(spoiled).read_text(encoding="utf-8"))
    doc["totals"]["into_rivers_kg_yr"] = {"value": 2.04e6, "p5": 1.2e6, "p50": 2e6, "p95": 3.1e6}
    doc["hotspots"] = [
        {
            "kind": "leakage",
            "rank": 3,
            "rank_p5": 2,
            "rank_p95": 7,
            "rank_min": 1,
            "rank_max": 8,
            "unstable": True,
        },
        {
            "kind": "leakage",
            "rank": 1,
            "rank_p5": 1,
            "rank_p95": 2,
            "rank_min": 1,
            "rank_max": 2,
            "unstable": False,
        },
    ]
    doc["sensitivity"][0]["parameter"] = "<b>x</b>"
    UNCERTAINTY_JSON.path(spoiled).write_text(json.dumps(doc), encoding="utf-8")
    page = render_report(spoiled, tmp_path / "report.html").read_text(encoding="utf-8")
    assert '2.0 million kg/yr <span class="range">(1.2\u20133.1 million)</span>' in page
    assert '<td class="num">3 (2\u20137), <span class="unstable">unstable</span></td>' in page
    assert '<td class="num">1 (1\u20132)</td>' in page
    assert '<table id="sensitivity-table">' in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<b>x</b>" not in page
    rows = re.findall(
        r"<tr><td>[^<]+</td><td class=\"num\">", page.split('id="sensitivity-table"')[1].split("</table>")[0]
    )
    assert len(rows) == len(UNCERTAIN_PARAMETERS)


def test_two_significant_figures() -> None:
    assert format_range(2.04e6, 1.2e6, 3.06e6, "kg/yr") == "2.0 million kg/yr (1.2\u20133.1 million)"
    assert format_range(829_781, 515_570, 1_459_840, "kg/yr") == "830,000 kg/yr (520,000\u20131,500,000)"
    assert [two_significant(v) for v in (0.412, 4567, 45.2, 0)] == ["0.41", "4,600", "45", "0"]


def test_the_docs_list_every_range_as_in_the_dataclass() -> None:
    text = (ROOT / "docs" / "hotspot-model.md").read_text(encoding="utf-8")
    section = text.split("## Uncertainty", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]+) \| ([^|]+) \| (\w+) \|", section, re.MULTILINE)
    documented = {name: (float(low), float(high), scale) for name, low, high, scale in rows}
    assert documented == {r.name: (r.low, r.high, r.scale) for r in UNCERTAIN_PARAMETERS}
