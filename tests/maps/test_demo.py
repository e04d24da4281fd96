"""The demo basin end to end: deterministic generation, the real pipeline, and recovery of planted truth."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from plastic_hotspots.maps.demo import DemoOutputs, generate_demo_basin, run_demo

RADIUS_M = 500.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoOutputs:
    return run_demo(tmp_path_factory.mktemp("demo"))


def _distances_m(a: gpd.GeoDataFrame, lon: float, lat: float) -> np.ndarray:
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32647", always_xy=True)
    x0, y0 = to_utm.transform(lon, lat)
    xs, ys = to_utm.transform(a.geometry.x.to_numpy(), a.geometry.y.to_numpy())
    return np.hypot(np.asarray(xs) - x0, np.asarray(ys) - y0)


def recovery(ranked: gpd.GeoDataFrame, planted: list[dict[str, object]], top: int) -> tuple[int, int]:
    """Planted sources with a top-`top` hotspot near them, and top hotspots near a planted source."""
    best = ranked.sort_values("rank").head(top)
    hit = sum(bool((_distances_m(best, float(p["lon"]), float(p["lat"])) <= RADIUS_M).any()) for p in planted)  # type: ignore[arg-type]
    near = np.zeros(len(best), dtype=bool)
    for p in planted:
        near |= _distances_m(best, float(p["lon"]), float(p["lat"])) <= RADIUS_M  # type: ignore[arg-type]
    return hit, int(near.sum())


def test_demo_writes_map_and_hotspot_files(demo: DemoOutputs) -> None:
    assert demo.map_html.stat().st_size > 50_000
    for name in ("leakage_index.tif", "accumulation.tif", "hotspots.gpkg", "provenance.json"):
        assert (demo.hotspots_dir / name).is_file(), name
    prov = json.loads((demo.hotspots_dir / "provenance.json").read_text())
    assert prov["tool"] == "maps.hotspots"
    assert prov["parameters"]["land_lambda_m"] == 400.0


def test_planted_leakage_sources_are_top_ranked(demo: DemoOutputs) -> None:
    truth = json.loads((demo.truth.parent / "truth.json").read_text())["leakage"]
    ranked = gpd.read_file(demo.hotspots_dir / "hotspots.gpkg", layer="leakage_hotspots")
    hit, near = recovery(ranked, truth, top=10)
    print(
        f"planted leakage sources with a top-10 hotspot within {RADIUS_M:.0f} m: {hit}/{len(truth)}; "
        f"top-10 hotspots near a planted source: {near}"
    )
    assert hit == len(truth)
    hit_top, near_top = recovery(ranked, truth, top=len(truth))
    assert near_top >= len(truth) - 1, (hit_top, near_top)


def test_planted_accumulation_points_are_the_top_accumulation_hotspots(demo: DemoOutputs) -> None:
    truth = json.loads((demo.truth.parent / "truth.json").read_text())["accumulation"]
    ranked = gpd.read_file(demo.hotspots_dir / "hotspots.gpkg", layer="accumulation_hotspots")
    hit, near = recovery(ranked, truth, top=len(truth))
    assert (hit, near) == (len(truth), len(truth))
    assert set(ranked.sort_values("rank").head(len(truth))["driver"]) == {"dam", "weir"}


def test_generation_is_deterministic(tmp_path: Path) -> None:
    a = generate_demo_basin(tmp_path / "a", seed=7).parent
    b = generate_demo_basin(tmp_path / "b", seed=7).parent
    c = generate_demo_basin(tmp_path / "c", seed=8).parent
    obs_a = pd.read_parquet(a / "observations.parquet")
    obs_b = pd.read_parquet(b / "observations.parquet")
    obs_c = pd.read_parquet(c / "observations.parquet")
    pd.testing.assert_frame_equal(obs_a, obs_b)
    assert not obs_a["items"].equals(obs_c["items"])


def test_fusion_recovers_the_planted_litter_link_and_finds_the_dumps(demo: DemoOutputs) -> None:
    from plastic_hotspots.maps.demo import BACKGROUND_ITEMS, ITEMS_PER_KG_YR

    report = json.loads((demo.hotspots_dir / "fusion.json").read_text())
    fit = report["calibration"]
    print(report["summary"])
    assert fit["scale"] == pytest.approx(ITEMS_PER_KG_YR, rel=0.1)
    assert fit["background"] == pytest.approx(BACKGROUND_ITEMS, rel=0.25)
    assert fit["held_out_deviance"] < 0.8 * fit["held_out_null_deviance"]
    assert fit["spearman"] > 0.5
    cells = gpd.read_file(demo.hotspots_dir / "hotspots.gpkg", layer="observed_density")
    assert {"modelled_rate", "far_above_model"} <= set(cells.columns)
    far = cells[cells["far_above_model"]].to_crs("EPSG:32647")
    dumps = [p for p in json.loads((demo.truth.parent / "truth.json").read_text())["leakage"]
             if p["kind"] == "illegal dump"]  # fmt: skip
    assert len(far) == fit["excess_cells"] == len(dumps)
    centres = gpd.GeoDataFrame(geometry=far.centroid.to_crs("EPSG:4326"))
    for dump in dumps:
        assert (_distances_m(centres, float(dump["lon"]), float(dump["lat"])) <= 150.0).any(), dump["name"]
    from PIL import Image

    with Image.open(demo.hotspots_dir / "fusion.png") as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.shape[1] > 1000
    assert pixels.std() > 10


def test_demo_writes_the_report_and_district_boundaries(demo: DemoOutputs) -> None:
    text = demo.report_html.read_text(encoding="utf-8")
    assert "Demo basin: plastic hotspots report" in text
    assert "<script" not in text.lower()
    districts = gpd.read_file(demo.hotspots_dir / "hotspots.gpkg", layer="admin_boundaries")
    assert sorted(districts["name"]) == ["Doi Upper district", "Eastford district", "Riverton district"]
    assert "Administrative boundaries" in demo.map_html.read_text(encoding="utf-8")


def test_demo_map_opens_offline_in_chromium_with_every_layer(demo: DemoOutputs, tmp_path: Path) -> None:
    from browser import layer_control_labels, require_chromium

    require_chromium()
    errors, labels = layer_control_labels(demo.map_html, tmp_path / "demo.png")
    assert errors == []  # no JavaScript error, no network request
    expected = {
        "Basemap (offline)", "OpenStreetMap (online)", "Leakage-source index", "Administrative boundaries",
        "Basin and sub-basins", "Observed density", "Gi* hot and cold spots", "Rivers", "Survey photos",
        "Barriers", "Accumulation hotspots", "Leakage hotspots",
    }  # fmt: skip
    assert expected <= set(labels), expected - set(labels)
    from matplotlib import image as mpimage

    pixels = mpimage.imread(tmp_path / "demo.png")
    assert len(np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50


# Run in the page: the view's bounds, the boxes on screen, and the legend's height before and
# after clicking its toggle (twice), written into <pre id="ph-probe"> for the test to read.
PROBE_JS = """(async (basin, survey) => {
  const wait = ms => new Promise(r => setTimeout(r, ms));
  const map = Object.values(window).find(v => v instanceof L.Map);
  const legend = document.getElementById("ph-legend");
  const body = legend.querySelector(".ph-legend-body");
  const toggle = legend.querySelector("summary");
  const rect = el => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const state = () => [legend.open, legend.getBoundingClientRect().height, body.checkVisibility()];
  const onScreen = b => {
    const c = map.getContainer().getBoundingClientRect();
    const sw = map.latLngToContainerPoint(L.latLng(b[0][0], b[0][1]));
    const ne = map.latLngToContainerPoint(L.latLng(b[1][0], b[1][1]));
    return [c.left + sw.x, c.top + ne.y, c.left + ne.x, c.top + sw.y];
  };
  const v = map.getBounds();
  const out = {
    view: [[v.getSouth(), v.getWest()], [v.getNorth(), v.getEast()]],
    basin_px: onScreen(basin), survey_px: onScreen(survey), legend_px: rect(legend),
    start: state(),
  };
  toggle.click(); await wait(150);
  out.clicked = state();
  toggle.click(); await wait(150);
  out.clicked_again = state();
  const pre = document.createElement("pre");
  pre.id = "ph-probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})(%s, %s)"""


def _leaflet_bounds(frame: gpd.GeoDataFrame) -> list[list[float]]:
    west, south, east, north = (float(v) for v in frame.total_bounds)
    return [[south, west], [north, east]]


def _contains(outer: list[list[float]], inner: list[list[float]]) -> bool:
    (s0, w0), (n0, e0) = outer
    (s1, w1), (n1, e1) = inner
    return s0 <= s1 and w0 <= w1 and n0 >= n1 and e0 >= e1


def _overlap(a: list[float], b: list[float]) -> float:
    """Area of the intersection of two screen boxes ``[left, top, right, bottom]``."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return max(width, 0.0) * max(height, 0.0)


def _probe(map_html: Path, png: Path, width: int, basin: Any, survey: Any) -> dict[str, Any]:
    from browser import run_headless

    script = PROBE_JS % (json.dumps(basin), json.dumps(survey))
    errors, dom = run_headless(map_html, png, width=width, height=860, script=script)
    assert errors == []
    found = re.search(r'<pre id="ph-probe">(.*?)</pre>', dom, re.DOTALL)
    assert found, "the probe script did not run"
    result: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return result


def _demo_bounds(demo: DemoOutputs) -> tuple[list[list[float]], list[list[float]]]:
    gpkg = demo.hotspots_dir / "hotspots.gpkg"
    basin = _leaflet_bounds(gpd.read_file(gpkg, layer="basin"))
    survey = _leaflet_bounds(gpd.read_file(gpkg, layer="survey_points"))
    return basin, survey


def test_demo_map_view_holds_basin_and_survey_clear_of_the_legend(demo: DemoOutputs, tmp_path: Path) -> None:
    from browser import require_chromium

    require_chromium()
    basin, survey = _demo_bounds(demo)
    probe = _probe(demo.map_html, tmp_path / "wide.png", 1280, basin, survey)
    assert _contains(probe["view"], basin), (probe["view"], basin)
    assert _contains(probe["view"], survey), (probe["view"], survey)
    # Fitted, not zoomed out to the world: the basin takes a fair share of the view.
    (_south, west), (_north, east) = probe["view"]
    assert (basin[1][1] - basin[0][1]) / (east - west) > 0.25
    # The legend starts open on a wide screen and does not cover the basin.
    open_, open_height, body_visible = probe["start"]
    assert open_
    assert body_visible
    assert open_height > 150
    legend_px, basin_px = probe["legend_px"], probe["basin_px"]
    legend_area = (legend_px[2] - legend_px[0]) * (legend_px[3] - legend_px[1])
    assert _overlap(legend_px, basin_px) <= 0.02 * legend_area, (legend_px, basin_px)


def test_demo_map_legend_collapses_and_expands(demo: DemoOutputs, tmp_path: Path) -> None:
    from browser import require_chromium

    require_chromium()
    basin, survey = _demo_bounds(demo)
    probe = _probe(demo.map_html, tmp_path / "wide.png", 1280, basin, survey)
    open_, open_height, _ = probe["start"]
    closed, closed_height, closed_visible = probe["clicked"]
    reopened, reopened_height, reopened_visible = probe["clicked_again"]
    assert open_
    assert not closed
    assert reopened
    assert not closed_visible
    assert reopened_visible
    assert closed_height < 50 < open_height
    assert reopened_height == pytest.approx(open_height, abs=1)


def test_demo_map_legend_starts_collapsed_on_a_narrow_screen(demo: DemoOutputs, tmp_path: Path) -> None:
    from browser import require_chromium

    require_chromium()
    basin, survey = _demo_bounds(demo)
    probe = _probe(demo.map_html, tmp_path / "narrow.png", 600, basin, survey)
    closed, closed_height, closed_visible = probe["start"]
    assert not closed
    assert not closed_visible
    assert closed_height < 50
    opened, opened_height, opened_visible = probe["clicked"]
    assert opened
    assert opened_visible
    assert opened_height > 150
    assert _contains(probe["view"], basin)
    assert _contains(probe["view"], survey)
