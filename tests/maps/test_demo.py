"""The demo basin end to end: deterministic generation, the real pipeline, and recovery of planted truth."""

from __future__ import annotations

import json
from pathlib import Path

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
    from browser import require_chromium, run_headless

    require_chromium()
    script = """(() => {
      const labels = [...document.querySelectorAll(".leaflet-control-layers label span")];
      const pre = document.createElement("pre");
      pre.id = "labels";
      pre.textContent = JSON.stringify(labels.map(s => s.textContent.trim()));
      document.body.appendChild(pre);
    })()"""
    errors, dom = run_headless(demo.map_html, tmp_path / "demo.png", script=script)
    assert errors == []  # no JavaScript error, no network request
    import html
    import re

    found = re.search(r'<pre id="labels">(.*?)</pre>', dom, re.DOTALL)
    assert found
    labels = json.loads(html.unescape(found.group(1)))
    expected = {
        "Basemap (offline)", "OpenStreetMap (online)", "Leakage-source index", "Administrative boundaries",
        "Basin and sub-basins", "Observed density", "Gi* hot and cold spots", "Rivers", "Survey photos",
        "Barriers", "Accumulation hotspots", "Leakage hotspots",
    }  # fmt: skip
    assert expected <= set(labels), expected - set(labels)
    from matplotlib import image as mpimage

    pixels = mpimage.imread(tmp_path / "demo.png")
    assert len(np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50
