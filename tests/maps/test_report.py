"""The agency report: one self-contained page, right tables, escaped text, optional parts, a real browser."""

from __future__ import annotations

import html
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
from browser import pdf_page_count, print_to_pdf, require_chromium, run_headless
from shapely.geometry import box

from plastic_hotspots.cli import main
from plastic_hotspots.maps.errors import RenderError
from plastic_hotspots.maps.render.figures import (
    SurveyCoverage,
    format_number,
    format_percent,
    subbasin_chart_svg,
    survey_coverage,
)
from plastic_hotspots.maps.render.report import limits, render_report
from plastic_hotspots.maps.render.uncertainty import format_range

HOSTILE = "<script>alert('x')</script>"
HOSTILE_DRIVER = "<img src=x onerror=alert(2)>"


class _Tables(HTMLParser):
    """The text of every cell of every ``<table id=...>``, by table id: ``{id: [[cell, ...], ...]}``."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag == "td" and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._table is not None and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(text: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(text)
    return {name: [row for row in rows if row] for name, rows in parser.tables.items()}


def layer(directory: Path, name: str) -> gpd.GeoDataFrame:
    return gpd.read_file(directory / "hotspots.gpkg", layer=name, engine="pyogrio")


def copy_result(source: Path, target: Path, *, keep: tuple[str, ...]) -> Path:
    """A copy of a result directory whose GeoPackage holds only the layers in ``keep``."""
    shutil.copytree(source, target)
    (target / "hotspots.gpkg").unlink()
    for name in keep:
        layer(source, name).to_file(target / "hotspots.gpkg", layer=name, driver="GPKG", engine="pyogrio")
    return target


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from plastic_hotspots.maps.demo import run_demo

    return run_demo(tmp_path_factory.mktemp("demo")).hotspots_dir


@pytest.fixture(scope="module")
def page(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_report(demo_dir, tmp_path_factory.mktemp("report") / "out" / "report.html", title="Demo")


@pytest.fixture(scope="module")
def text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def hostile_dir(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo result with hostile names in every place text comes from."""
    spoiled = tmp_path_factory.mktemp("hostile") / "hotspots"
    shutil.copytree(demo_dir, spoiled)
    gpkg = spoiled / "hotspots.gpkg"
    for name, column, value in (
        ("basin", "name", HOSTILE),
        ("subbasins", "name", HOSTILE),
        ("barriers", "name", HOSTILE),
        ("leakage_hotspots", "driver", HOSTILE_DRIVER),
    ):
        frame = layer(spoiled, name)
        frame[column] = value
        frame.to_file(gpkg, layer=name, driver="GPKG", engine="pyogrio")
    prov = json.loads((spoiled / "provenance.json").read_text(encoding="utf-8"))
    prov["inputs"] = [f"/data/{HOSTILE}/dem.tif"]
    prov["version"] = HOSTILE
    (spoiled / "provenance.json").write_text(json.dumps(prov), encoding="utf-8")
    fusion = json.loads((spoiled / "fusion.json").read_text(encoding="utf-8"))
    fusion["summary"] = HOSTILE_DRIVER
    (spoiled / "fusion.json").write_text(json.dumps(fusion), encoding="utf-8")
    return spoiled


@pytest.fixture(scope="module")
def hostile_page(hostile_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_report(hostile_dir, tmp_path_factory.mktemp("hostile-report") / "r.html", title=HOSTILE)


# --- the page -----------------------------------------------------------------------------------


def test_writes_one_self_contained_file(page: Path, text: str) -> None:
    assert [p.name for p in page.parent.iterdir()] == ["report.html"]  # no temporary file left behind
    assert text.startswith("<!DOCTYPE html>")
    assert "<script" not in text.lower()  # no JavaScript at all
    assert "<link" not in text.lower()
    assert not re.search(r"\b(src|href)\s*=\s*[\"']?(https?:)?//", text, re.IGNORECASE)
    assert not re.search(r"url\(\s*[\"']?(https?:)?//", text, re.IGNORECASE)
    assert "@import" not in text
    assert re.findall(r'\bsrc="([a-z]+):', text) == ["data"]  # fusion.png, embedded
    assert "default-src 'none'" in text  # a CSP forbids scripts and fetches even if text slipped through
    assert "@page { size: A4;" in text
    assert "@media print" in text
    assert "Save as PDF: your browser's Print dialog" in html.unescape(text)


@pytest.mark.parametrize("kind", ["leakage", "accumulation"])
def test_hotspot_tables_hold_the_ranked_hotspots(demo_dir: Path, text: str, kind: str) -> None:
    expected = layer(demo_dir, f"{kind}_hotspots").sort_values("rank")
    rows = tables(text)[f"{kind}-table"]
    assert len(rows) == len(expected) == 10
    barriers = layer(demo_dir, "barriers")
    for row, (_, spot) in zip(rows, expected.iterrows(), strict=True):
        rank, lon, lat, value, driver, figures, subbasin = row
        assert int(rank.split()[0]) == spot["rank"]  # then its range over the parameter draws
        assert re.fullmatch(r"\d+ \(\d+\u2013(\d+|unranked)\)(, unstable)?", rank), rank
        assert float(lon) == pytest.approx(spot.geometry.x, abs=1e-5)
        assert float(lat) == pytest.approx(spot.geometry.y, abs=1e-5)
        assert float(value.replace(",", "")) == pytest.approx(spot["value"], abs=0.51)
        assert driver.split(":")[0] == spot["driver"]
        assert subbasin.startswith("Sub-basin ")
        if kind == "leakage":
            assert f"{format_percent(spot['collection_rate'])} collected" in figures
        else:
            assert f"load {format_number(spot['load_kg_yr'], 'kg/yr')}" in figures
    assert [float(r[3].replace(",", "")) for r in rows] == sorted(
        (float(r[3].replace(",", "")) for r in rows), reverse=True
    )
    if kind == "accumulation":  # the dam and the weir are named after the barrier they are at
        drivers = [r[4] for r in rows]
        named = {f"{b['kind']}: {b['name']}" for _, b in barriers.iterrows()}
        assert drivers[0] == "weir: Low weir"
        assert drivers[1] == "dam: Upper dam"
        assert sum(d in named for d in drivers) >= 6


def test_headline_figures_add_up(demo_dir: Path, text: str) -> None:
    subs = layer(demo_dir, "subbasins")
    prov = json.loads((demo_dir / "provenance.json").read_text(encoding="utf-8"))
    leak, kept = subs["leakage_kg_yr"].sum(), subs["accumulation_kg_yr"].sum()
    exported = prov["parameters"]["exported_kg_yr"]
    assert leak == pytest.approx(kept + exported, rel=1e-6)  # the budget closes
    section = text[text.index('id="headline"') : text.index('id="hotspots"')]
    ranges = json.loads((demo_dir / "uncertainty.json").read_text(encoding="utf-8"))["totals"]
    for value, name in ((leak, "into_rivers_kg_yr"), (kept, "retained_kg_yr"), (exported, "exported_kg_yr")):
        spread = ranges[name]
        assert spread["value"] == pytest.approx(value, rel=1e-6)
        # two significant figures and the 5-95 % range over the parameter draws
        main, _, bracket = format_range(spread["value"], spread["p5"], spread["p95"], "kg/yr").partition(" (")
        assert f'{main} <span class="range">({bracket}</span>' in section, main
    assert "400 km²" in section
    assert f"({format_percent(kept / leak)} of leakage)" in section
    assert "of the basin area surveyed" in section


def test_bar_chart_has_every_subbasin_sorted_by_leakage(demo_dir: Path, text: str) -> None:
    subs = layer(demo_dir, "subbasins")
    chart = text[text.index('<svg class="bars"') :]
    chart = chart[: chart.index("</svg>")]
    assert chart.count('class="bar-leak"') == chart.count('class="bar-acc"') == len(subs) == 15
    titles = re.findall(r"<title>([^<]*): [0-9,.]+ kg/yr</title></rect><text[^>]*>[^<]*</text><rect", chart)
    top = subs.sort_values("leakage_kg_yr", ascending=False)["name"].tolist()
    assert titles == top  # one title per leakage bar, in order
    assert '<svg class="sketch"' in text  # and the sketch map beside it
    assert text.count('class="leakage-spot"') == 10
    assert text.count('class="accumulation-spot"') == 10


def test_chart_sums_what_it_leaves_out(demo_dir: Path) -> None:
    subs = layer(demo_dir, "subbasins")
    svg = subbasin_chart_svg(subs, max_bars=5)
    assert svg.count('class="bar-leak"') == 5
    rest = subs.sort_values("leakage_kg_yr", ascending=False).iloc[5:]
    assert f"10 smaller sub-basins not drawn: {format_number(rest['leakage_kg_yr'].sum(), 'kg/yr')}" in svg


def test_survey_coverage_matches_the_cells(demo_dir: Path, text: str) -> None:
    cells = layer(demo_dir, "observed_density")
    rows = dict(tables(text)["survey-table"])
    assert rows["surveyed cells (at least 3 observations)"] == format_number(int(cells["surveyed"].sum()))
    assert rows["cells with low effort (too few observations: not surveyed)"] == format_number(
        int((~cells["surveyed"]).sum())
    )
    assert rows["observations (images or frames)"] == format_number(int(cells["observations"].sum()))
    assert rows["km surveyed"] == format_number(cells["effort_km"].sum())
    assert rows["surveyed cells far above the model"] == "2"  # the two planted dumps
    assert rows["survey tracks"] == format_number(layer(demo_dir, "survey_points")["track"].nunique())
    summary = json.loads((demo_dir / "fusion.json").read_text(encoding="utf-8"))["summary"]
    assert html.escape(summary) in text
    assert 'src="data:image/png;base64,' in text


def test_provenance_and_parameters_are_shown(demo_dir: Path, text: str) -> None:
    prov = json.loads((demo_dir / "provenance.json").read_text(encoding="utf-8"))
    assert f"plastic-hotspots {prov['version']}" in text
    assert prov["created_at"] in text
    for path in prov["inputs"]:
        assert f"<b>{Path(path).name}</b>" in text
    section = text[text.index('id="provenance"') : text.index('id="limits"')]
    assert "<dt>land travel length, m</dt><dd>400</dd>" in section
    assert "bridge 0.85, dam 0.15, lock 0.6, port 0.7, weir 0.5" in section
    assert f"All {len(prov['parameters'])} parameters are in provenance.json." in section


def test_limits_follow_what_the_directory_holds(text: str) -> None:
    section = html.unescape(text[text.index('id="limits"') :])
    assert "Only the link between mismanaged plastic and litter seen was fitted" in section
    assert "2 surveyed cell(s) hold far more litter than the model expects" in section
    assert "assumed pass factors per kind (bridge 0.85, dam 0.15, port 0.7, weir 0.5" in section
    assert "not surveyed: their litter is unknown, not absent" in section
    assert "No survey" not in section


def test_limits_without_survey_or_barriers() -> None:
    basin = gpd.GeoDataFrame({"name": ["b"]}, geometry=[box(100.0, 20.0, 100.1, 20.1)], crs="EPSG:4326")
    said = " ".join(limits({"basin": basin}, {}, None, None))
    assert "No survey: nothing here was checked against litter seen on the ground" in said
    assert "No barriers were given" in said
    held = {"calibration.held_out_deviance": 120.0, "calibration.held_out_null_deviance": 100.0}
    assert any("no better than one area-wide rate" in s for s in limits({"basin": basin}, held, None, None))
    few = SurveyCoverage(4, 0, 4, 6, 1.0, 0.4, 0.0, 100.0, 0, None, 6, 1, "", "")
    said = " ".join(limits({"basin": basin}, {"min_observations": 3}, few, None))
    assert "No cell inside the basin had enough observations to calibrate the model" in said
    assert "Cells with fewer than 3 observations are not surveyed" in said
    assert "The survey covers 0 % of the basin area" in said


def test_survey_coverage_counts_area_inside_the_basin() -> None:
    crs = "EPSG:32647"
    basin = gpd.GeoDataFrame(geometry=[box(500_000, 2_200_000, 501_000, 2_201_000)], crs=crs)
    cells = gpd.GeoDataFrame(
        {
            "observations": [5, 1, 8],
            "effort_km": [0.5, 0.1, 0.9],
            "items": [3, 0, 2],
            "surveyed": [True, False, True],
        },
        geometry=[
            box(500_000, 2_200_000, 500_100, 2_200_100),
            box(500_100, 2_200_000, 500_200, 2_200_100),
            box(500_950, 2_200_000, 501_050, 2_200_100),  # half outside the basin
        ],
        crs=crs,
    ).to_crs("EPSG:4326")
    coverage = survey_coverage(cells, None, basin.to_crs("EPSG:4326"))
    assert coverage is not None
    assert (coverage.cells, coverage.surveyed_cells, coverage.low_effort_cells) == (3, 2, 1)
    assert coverage.observations == 14
    assert coverage.surveyed_share == pytest.approx(0.015, rel=1e-3)
    assert coverage.photos is None
    assert survey_coverage(None, None, basin) is None


def test_numbers_for_people() -> None:
    assert format_number(2194.03, "kg/yr") == "2,194 kg/yr"
    assert format_number(71.29) == "71.3"
    assert format_number(0.2406) == "0.24"
    assert format_number(float("nan")) == "n/a"
    assert format_number(None, "km") == "n/a"
    assert format_percent(0.05) == "5 %"
    assert format_percent(0.6855) == "69 %"
    assert format_percent(0.0024) == "0.24 %"


# --- hostile text -------------------------------------------------------------------------------


def test_hostile_text_is_escaped(hostile_page: Path) -> None:
    text = hostile_page.read_text(encoding="utf-8")
    assert HOSTILE not in text
    assert HOSTILE_DRIVER not in text
    assert "<script" not in text.lower()
    assert "<img src=x" not in text
    escaped, escaped_driver = html.escape(HOSTILE), html.escape(HOSTILE_DRIVER)
    assert f"<title>{escaped}</title>" in text  # the title
    assert f"Basin: <b>{escaped}</b>" in text
    assert f"<td>{escaped_driver}</td>" in text  # a leakage driver
    assert f"dam: {escaped}" in text  # a barrier's name, by its accumulation hotspot
    assert f"<title>{escaped}: " in text  # sub-basin names in the bar chart, in full in the tooltip
    assert html.escape(HOSTILE[:23]) + "…" in text  # and cut before escaping on the label
    assert f"<b>Calibration:</b> {escaped_driver}" in text
    assert f"plastic-hotspots {escaped}" in text  # the version from provenance.json
    assert f'<span class="note">/data/{escaped}</span>' in text


# --- optional parts and errors ------------------------------------------------------------------


def test_optional_parts_may_be_missing(demo_dir: Path, tmp_path: Path) -> None:
    bare = copy_result(demo_dir, tmp_path / "bare", keep=("basin", "subbasins", "leakage_hotspots"))
    for name in ("provenance.json", "fusion.json", "fusion.png", "mismanaged_plastic.tif"):
        (bare / name).unlink()
    assert "observed_density" not in {str(r[0]) for r in pyogrio.list_layers(bare / "hotspots.gpkg")}
    text = html.unescape(render_report(bare, tmp_path / "bare.html").read_text(encoding="utf-8"))
    assert "No survey: no litter observations were given" in text
    assert '<div class="value">no survey</div>' in text
    assert "provenance.json not found in bare" in text
    assert 'Accumulation hotspots: where plastic collects</h3><p class="missing">None ranked' in text
    assert "No barriers were given" in text
    assert "No survey: nothing here was checked against litter seen on the ground" in text
    assert "mismanaged plastic on land" not in text
    assert "exported at the outlet" not in text
    assert len(tables(text)["leakage-table"]) == 10

    basin_only = copy_result(demo_dir, tmp_path / "basin-only", keep=("basin",))
    for tif in basin_only.glob("*.tif"):
        tif.unlink()
    text = html.unescape(render_report(basin_only, tmp_path / "basin.html").read_text(encoding="utf-8"))
    assert 'No sub-basins in this result (layer "subbasins" missing)' in text
    assert '<div class="value">n/a</div><div class="label">leakage into rivers</div>' in text


def test_missing_directory_fails_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "nowhere"), "--out", str(out)]) == 1
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert "result directory not found" in err
    assert "How to fix" in err
    assert "plastic-hotspots hotspots --config basin.yaml --out DIR" in err
    assert not out.exists()


def test_missing_geopackage_or_basin_raises(demo_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(RenderError, match=r"no hotspots\.gpkg") as info:
        render_report(tmp_path / "empty", tmp_path / "r.html")
    assert "plastic-hotspots hotspots" in info.value.hint
    no_basin = copy_result(demo_dir, tmp_path / "no-basin", keep=("subbasins",))
    with pytest.raises(RenderError, match="no basin outline"):
        render_report(no_basin, tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_cli_writes_the_report(demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "report.html"
    assert main(["report", str(demo_dir), "--out", str(out), "--title", "Nam <Demo>"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert "<h1>Nam &lt;Demo&gt;</h1>" in out.read_text(encoding="utf-8")


# --- a real browser -----------------------------------------------------------------------------


def test_report_opens_offline_in_a_browser(page: Path, tmp_path: Path) -> None:
    from matplotlib import image as mpimage

    require_chromium()
    shot = tmp_path / "report.png"
    errors, dom = run_headless(page, shot, width=1100, height=1400, settle_s=0.3)
    assert errors == []
    assert 'id="leakage-table"' in dom
    assert '<svg class="bars"' in dom
    pixels = mpimage.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1400, 1100)
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50  # text, bars, the sketch map and fusion.png, not a blank page
    assert (pixels.min(axis=2) > 0.97).mean() < 0.85  # mostly white, not all white
    reds = (pixels[..., 0] > 0.75) & (pixels[..., 1] < 0.3) & (pixels[..., 2] < 0.25)
    assert reds.sum() > 500  # the leakage bars are drawn


def test_browser_shows_hostile_text_as_text(hostile_page: Path, tmp_path: Path) -> None:
    require_chromium()
    errors, dom = run_headless(hostile_page, tmp_path / "hostile.png", settle_s=0.3)
    assert errors == []  # no alert dialog, no script error, no request for "x"
    assert "<script" not in dom.lower()
    assert "<img src=" not in dom
    assert html.escape(HOSTILE, quote=False) in dom
    assert html.escape(HOSTILE_DRIVER, quote=False) in dom


def test_prints_to_a_short_pdf(page: Path, tmp_path: Path) -> None:
    require_chromium()
    pdf = print_to_pdf(page, tmp_path / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF")
    assert 1 <= pdf_page_count(pdf) <= 3


def _visible_text(page_html: str) -> str:
    """The words a reader sees: no tags, styles or attribute values."""
    body = re.sub(r"<style.*?</style>|<svg.*?</svg>|<[^>]+>", " ", page_html, flags=re.DOTALL)
    return html.unescape(" ".join(body.split()))


def test_the_report_never_prints_nan(demo_dir: Path, text: str, tmp_path: Path) -> None:
    """Neither on the demo, nor when every figure it reads is NaN: those say n/a (never "nan", "nan %")."""
    assert not re.search(r"\bnan\b", _visible_text(text), re.IGNORECASE)
    spoiled = tmp_path / "hotspots"
    shutil.copytree(demo_dir, spoiled)
    gpkg = spoiled / "hotspots.gpkg"
    for name, columns in (
        ("subbasins", ("area_km2", "leakage_kg_yr", "accumulation_kg_yr")),
        ("barriers", ("pass_factor", "retained_kg_yr")),
        ("leakage_hotspots", ("value", "population", "collection_rate", "p_land", "observed_extra_kg_yr")),
        ("accumulation_hotspots", ("value", "load_kg_yr", "pass_factor")),
        ("observed_density", ("effort_km", "items", "rate", "rate_lo", "rate_hi")),
    ):
        frame = layer(spoiled, name)
        for column in columns:
            frame[column] = np.nan
        frame.to_file(gpkg, layer=name, driver="GPKG", engine="pyogrio")
    figures = json.loads((spoiled / "fusion.json").read_text(encoding="utf-8"))
    for key, value in figures.items():
        if isinstance(value, float):
            figures[key] = float("nan")
    (spoiled / "fusion.json").write_text(json.dumps(figures), encoding="utf-8")
    ranges = json.loads((spoiled / "uncertainty.json").read_text(encoding="utf-8"))
    (spoiled / "uncertainty.json").write_text(json.dumps(_floats_to_nan(ranges["totals"]) and ranges))
    page = render_report(spoiled, tmp_path / "report.html", title="Every figure missing")
    seen = _visible_text(page.read_text(encoding="utf-8"))
    assert not re.search(r"\bnan\b", seen, re.IGNORECASE), re.findall(r".{60}\bnan\b.{20}", seen, re.I)
    assert seen.count("n/a") >= 5  # the missing figures are there, said as missing


def _floats_to_nan(tree: object) -> object:
    """Every float inside ``tree`` (dicts and lists, changed in place) set to NaN; returns ``tree``."""
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for key, value in list(items):
        if isinstance(value, float):
            tree[key] = float("nan")  # type: ignore[index]
        else:
            _floats_to_nan(value)
    return tree


@pytest.mark.parametrize(
    ("command", "name"),
    [("report", "provenance.json"), ("report", "fusion.json"), ("report", "uncertainty.json"),
     ("map", "provenance.json")],
)  # fmt: skip
def test_a_damaged_record_is_refused_not_drawn_without(
    command: str,
    name: str,
    demo_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An absent optional file leaves its part out; a file that is there but damaged stops the page."""
    monkeypatch.setenv("COLUMNS", "1000")  # paths in messages are not wrapped mid-name
    result = tmp_path / "result"
    shutil.copytree(demo_dir, result)
    for damage in ("{", "[1, 2]"):
        (result / name).write_text(damage)
        out = tmp_path / f"{command}.html"
        assert main([command, str(result), "--out", str(out)]) == 1
        err = " ".join(capsys.readouterr().err.split())
        assert f"{name} is damaged" in err
        assert "plastic-hotspots hotspots" in err
        assert not out.exists()
