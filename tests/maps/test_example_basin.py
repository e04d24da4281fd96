"""The packaged real basin (Maha Oya, Sri Lanka): shipped complete and attributed, and run by the demo."""

from __future__ import annotations

import html
import json
import re
from importlib import resources
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

from plastic_hotspots.cli import main
from plastic_hotspots.errors import ConfigError
from plastic_hotspots.maps.demo import copy_example_basin

MAX_BYTES = 5_000_000  # the extract ships in the wheel: a few MB at most


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("maha-oya")
    # The census has 19 divisions without values and 71 self-intersecting outlines: the run says so.
    with pytest.warns(UserWarning, match="missing or negative 'total_population'"):
        assert main(["demo", "--basin", "maha-oya", "--out", str(out)]) == 0
    return out


def _example() -> Path:
    folder = resources.files("plastic_hotspots.maps.examples").joinpath("maha_oya")
    return Path(str(folder))


def test_the_extract_holds_exactly_the_attributed_files_and_is_small() -> None:
    folder = _example()
    files = {p.name for p in folder.iterdir() if p.is_file()}
    attribution = (folder / "ATTRIBUTION.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([^`]+)` \|", attribution, re.MULTILINE))
    assert files == listed
    assert {"basin.yaml", "dem.tif", "LICENSE-pLitter", "ATTRIBUTION.md"} <= files
    total = sum((folder / name).stat().st_size for name in files)
    assert total < MAX_BYTES, f"{total:,} bytes"
    for line in (
        "public domain",
        "Lehner, B., Grill, G. (2013)",
        "Department of Census and Statistics, Sri Lanka",
        "CC BY-IGO",
        "CC BY 4.0 (World Bank)",
        "MIT",
    ):
        assert line in attribution, line
    assert "MIT License" in (folder / "LICENSE-pLitter").read_text(encoding="utf-8")
    assert not any("jakarta" in name.lower() for name in files)


def test_copy_example_basin_rejects_an_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no example basin named 'nile'"):
        copy_example_basin("nile", tmp_path)
    assert main(["demo", "--basin", "nile", "--out", str(tmp_path)]) == 1


def test_demo_maha_oya_writes_map_and_report_naming_the_basin(run_dir: Path) -> None:
    assert (run_dir / "map.html").stat().st_size > 50_000
    assert (run_dir / "inputs" / "ATTRIBUTION.md").is_file()
    assert not (run_dir / "truth").exists()
    report = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "Maha Oya, Sri Lanka: plastic hotspots report" in report
    found = re.search(
        r'class="value">([0-9,.]+)( million)? kg/yr (<span class="range">[^<]*</span>)?</div>'
        r'<div class="label">exported at the outlet',
        report,
    )
    assert found, "the report gives no exported load"
    assert float(found.group(1).replace(",", "")) > 0
    assert found.group(3), "the exported load is shown without its range"


def test_demo_maha_oya_keeps_the_mass_balance(run_dir: Path) -> None:
    hotspots = run_dir / "hotspots"
    subs = gpd.read_file(hotspots / "hotspots.gpkg", layer="subbasins")
    leakage = float(subs["leakage_kg_yr"].sum())
    retained = float(subs["accumulation_kg_yr"].sum())
    exported = float(json.loads((hotspots / "provenance.json").read_text())["parameters"]["exported_kg_yr"])
    print(f"Maha Oya: leakage {leakage:,.0f} kg/yr, retained {retained:,.0f}, exported {exported:,.0f}")
    assert leakage > 0
    assert exported > 0.1 * leakage  # the main river carries much of it past the mouth
    assert abs(leakage - retained - exported) <= 1e-3 * leakage
    basin = gpd.read_file(hotspots / "hotspots.gpkg", layer="basin")
    assert float(basin["area_km2"].iloc[0]) == pytest.approx(1465, rel=0.05)  # HydroRIVERS: 1,515 km2


def test_demo_maha_oya_map_opens_offline_in_chromium(run_dir: Path, tmp_path: Path) -> None:
    from browser import layer_control_labels, require_chromium

    require_chromium()
    errors, found = layer_control_labels(run_dir / "map.html", tmp_path / "maha-oya.png")
    assert errors == []  # no JavaScript error, no network request
    labels = set(found)
    expected = {
        "Basemap (offline)", "Leakage-source index", "Administrative boundaries", "Basin and sub-basins",
        "Observed density", "Rivers", "Survey photos", "Accumulation hotspots", "Leakage hotspots",
    }  # fmt: skip
    assert expected <= labels, expected - labels
    from matplotlib import image as mpimage

    pixels = mpimage.imread(tmp_path / "maha-oya.png")
    assert len(np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50


def test_where_the_layers_explain_nothing_the_map_and_report_say_so(run_dir: Path) -> None:
    """The Mawanella survey is not explained by the census layers: no observed kg/yr, said plainly."""
    fusion = json.loads((run_dir / "hotspots" / "fusion.json").read_text())["calibration"]
    assert fusion["deviance_explained"] >= 0.0  # the area-wide rate is nested in the fit
    assert not fusion["explains_survey"]
    assert fusion["held_out_deviance"] > 0.98 * fusion["held_out_null_deviance"]
    page = html.unescape((run_dir / "map.html").read_text(encoding="utf-8"))
    assert "The input layers do not explain this survey" in page
    report = html.unescape((run_dir / "report.html").read_text(encoding="utf-8"))
    assert "The layers do not explain the survey" in report
    ranked = gpd.read_file(run_dir / "hotspots" / "hotspots.gpkg", layer="leakage_hotspots")
    assert "observed litter" not in set(ranked["driver"])


def test_maha_oya_report_opens_in_chromium_with_ranges(run_dir: Path, tmp_path: Path) -> None:
    from browser import require_chromium, run_headless

    require_chromium()
    script = """(() => {
      const pre = document.createElement("pre");
      pre.id = "figures";
      pre.textContent = JSON.stringify({
        ranges: [...document.querySelectorAll(".range")].map(e => e.textContent.trim()),
        title: document.title,
        tables: document.querySelectorAll("table").length,
      });
      document.body.appendChild(pre);
    })()"""
    errors, dom = run_headless(run_dir / "report.html", tmp_path / "report.png", script=script)
    assert errors == []  # no JavaScript error, no network request
    found = re.search(r'<pre id="figures">(.*?)</pre>', dom, re.DOTALL)
    assert found
    figures = json.loads(html.unescape(found.group(1)))
    assert "Maha Oya" in figures["title"]
    assert len(figures["ranges"]) >= 4  # mismanaged, into rivers, retained, exported: each with its range
    assert figures["tables"] >= 3
