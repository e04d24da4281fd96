"""The large mode (``hotspots --tile N``) writes what the whole-grid run writes, on basins that fit."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
import yaml
from rasterio.transform import from_origin
from shapely.geometry import Point

from plastic_hotspots.cli import main
from plastic_hotspots.maps.config import load_config
from plastic_hotspots.maps.demo import generate_demo_basin
from plastic_hotspots.maps.errors import LayerError
from plastic_hotspots.maps.io.bands import read_band
from plastic_hotspots.maps.large.run import LARGE_LAYERS, run_large
from plastic_hotspots.maps.wholegrid.run import run_hotspots

# Rasters whose values are sums or products along flow paths: equal to rounding (float64 sums grouped
# per tile), which float32 storage almost always hides. The others are equal bit for bit.
ROUNDED = {"p_land", "leakage_index", "river_load", "accumulation"}
HOTSPOT_KEYS = ["rank", "unit", "driver", "row", "col"]


@pytest.fixture(scope="module")
def demo_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo basin's inputs without the survey (the large mode does not read it)."""
    config = generate_demo_basin(tmp_path_factory.mktemp("large-demo"))
    raw = yaml.safe_load(config.read_text())
    raw["layers"].pop("observations")
    config.write_text(yaml.safe_dump(raw))
    return config


def assert_same_outputs(whole: Path, large: Path) -> None:
    """Every raster and hotspot of the whole-grid run's folder ``whole`` is in ``large``, equal."""
    for name, _, _ in LARGE_LAYERS:
        expected, grid = read_band(whole / f"{name}.tif")
        got, large_grid = read_band(large / f"{name}.tif")
        assert large_grid == grid, name
        if name in ROUNDED:
            np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-12, err_msg=name)
        else:
            np.testing.assert_array_equal(got, expected, err_msg=name)
    for kind in ("leakage", "accumulation"):
        expected = gpd.read_file(whole / "hotspots.gpkg", layer=f"{kind}_hotspots")
        got = gpd.read_file(large / "hotspots.gpkg", layer=f"{kind}_hotspots")
        assert list(got.columns) == list(expected.columns)
        assert len(got) == len(expected) > 0
        assert got[HOTSPOT_KEYS].to_dict("records") == expected[HOTSPOT_KEYS].to_dict("records")
        numbers = [c for c in expected.columns if c not in HOTSPOT_KEYS and c != "geometry"]
        np.testing.assert_allclose(got[numbers].to_numpy(float), expected[numbers].to_numpy(float), rtol=1e-9)
        assert got.geometry.geom_equals_exact(expected.geometry, 1e-9).all()
    basin_whole = gpd.read_file(whole / "hotspots.gpkg", layer="basin")
    basin_large = gpd.read_file(large / "hotspots.gpkg", layer="basin")
    assert basin_large["area_km2"].tolist() == basin_whole["area_km2"].tolist()
    utm = basin_whole.estimate_utm_crs()
    a, b = basin_whole.to_crs(utm).geometry[0], basin_large.to_crs(utm).geometry[0]
    assert a.symmetric_difference(b).area < 1e-6 * a.area
    rivers_whole = gpd.read_file(whole / "hotspots.gpkg", layer="rivers").to_crs(utm)
    rivers_large = gpd.read_file(large / "hotspots.gpkg", layer="rivers").to_crs(utm)
    for order, lines in rivers_whole.groupby("order"):
        length = rivers_large[rivers_large["order"] == order].length.sum()
        assert length == pytest.approx(lines.length.sum(), rel=1e-9), order


def test_large_mode_equals_the_whole_grid_run_on_the_demo_basin(demo_inputs: Path, tmp_path: Path) -> None:
    config = load_config(demo_inputs)
    run_hotspots(config, tmp_path / "whole")
    out = run_large(config, tmp_path / "large", tile=64)  # 4 x 4 tiles, rivers crossing their edges
    assert out.counts.tiles == 16
    assert_same_outputs(tmp_path / "whole", tmp_path / "large")
    barriers_whole = gpd.read_file(tmp_path / "whole" / "hotspots.gpkg", layer="barriers")
    barriers_large = gpd.read_file(out.vectors, layer="barriers")
    assert barriers_large["on_river"].tolist() == barriers_whole["on_river"].tolist()
    assert barriers_large["on_river"].any()
    np.testing.assert_allclose(barriers_large["retained_kg_yr"], barriers_whole["retained_kg_yr"], rtol=1e-9)
    drivers = set(gpd.read_file(out.vectors, layer="accumulation_hotspots")["driver"])
    assert drivers & {"dam", "weir", "bridge", "lock", "port"}  # retention at barriers is modelled
    assert out.totals["exported_kg_yr"] > 0
    assert out.totals["retained_kg_yr"] + out.totals["exported_kg_yr"] == pytest.approx(
        out.totals["leakage_kg_yr"], rel=1e-9
    )  # what enters the rivers is retained or leaves the grid


def write_random_basin(folder: Path, seed: int) -> Path:
    """A rough DEM with pits, flats and nodata in UTM, WorldPop-like people, service zones, barriers."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows, cols = 130, 150
    z = 200.0 + np.round(rng.normal(size=(rows, cols)).cumsum(axis=0) * 2 + rng.random((rows, cols)) * 3)
    z[rng.random((rows, cols)) < 0.01] = -9999.0
    west, north = 500_000.0, 2_230_000.0
    profile = {"driver": "GTiff", "width": cols, "height": rows, "count": 1, "dtype": "float32"}
    with rasterio.open(
        folder / "dem.tif",
        "w",
        **profile,
        crs="EPSG:32647",
        transform=from_origin(west, north, 100.0, 100.0),
        nodata=-9999.0,
    ) as dst:
        dst.write(z.astype(np.float32)[None])
    people = rng.gamma(0.3, 40.0, size=(70, 70))
    with rasterio.open(
        folder / "population.tif",
        "w",
        **{**profile, "width": 70, "height": 70},
        crs="EPSG:4326",
        transform=from_origin(98.99, 20.17, 0.0025, 0.0025),
    ) as dst:
        dst.write(people.astype(np.float32)[None])
    centre = Point(west + 7_000, north - 6_000)
    gpd.GeoDataFrame(
        {
            "name": ["town"],
            "generation_kg_per_cap_day": [0.8],
            "plastic_share": [0.12],
            "collection_rate": [0.3],
        },
        geometry=[centre.buffer(3_000)],
        crs="EPSG:32647",
    ).to_file(folder / "zones.gpkg")
    gpd.GeoDataFrame(
        {"kind": ["dam", "weir", "bridge"]},
        geometry=[Point(west + 7_450, north - 9_050), Point(west + 3_050, north - 12_050), Point(0, 0)],
        crs="EPSG:32647",
    ).to_file(folder / "barriers.gpkg")
    config = {
        "name": "Random basin",
        "cell_size_m": 100.0,
        "crs": "EPSG:32647",
        "layers": {
            "dem": "dem.tif",
            "population": "population.tif",
            "zones": "zones.gpkg",
            "barriers": "barriers.gpkg",
        },
        "params": {"river_threshold_km2": 0.5, "hotspot_separation_m": 300.0},
    }
    (folder / "basin.yaml").write_text(yaml.safe_dump(config))
    return folder / "basin.yaml"


def test_large_mode_equals_the_whole_grid_run_on_a_random_dem(tmp_path: Path) -> None:
    config = load_config(write_random_basin(tmp_path / "in", 7))
    run_hotspots(config, tmp_path / "whole")
    out = run_large(config, tmp_path / "large", tile=37)  # ragged tiles
    assert out.counts.tiles > 16
    assert_same_outputs(tmp_path / "whole", tmp_path / "large")
    people, _ = read_band(out.rasters["population"])
    assert np.nansum(people) > 0


def test_the_cli_runs_the_large_mode(
    demo_inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["hotspots", "--config", str(demo_inputs), "--out", str(tmp_path / "out"), "--tile", "96"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "large mode: 9 tiles of 96" in " ".join(captured.err.split())
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert written == {f"{name}.tif" for name, _, _ in LARGE_LAYERS} | {
        "hotspots.gpkg",
        "provenance.json",
        "uncertainty.json",
        ".work",
    }
    uncertainty = json.loads((tmp_path / "out" / "uncertainty.json").read_text(encoding="utf-8"))
    assert uncertainty["draws"] == 0
    assert "large (tiled) mode draws no parameter sets" in uncertainty["note"]
    layers = {name for name, _ in pyogrio.list_layers(tmp_path / "out" / "hotspots.gpkg")}
    assert {"basin", "rivers", "barriers", "leakage_hotspots", "accumulation_hotspots"} <= layers
    assert "raster:   " + str(tmp_path / "out" / "river_load.tif") in captured.out


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (["--tile", "8"], "--tile must be at least 16 cells, got 8", "512 to 1024"),
        (["--workers", "2"], "options of the large mode", "add --tile N"),
        (
            ["--tile", "64", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"],
            "--workers starts",
            "dask worker",
        ),
    ],
)
def test_bad_large_mode_options_give_a_clear_error(
    args: list[str],
    message: str,
    hint: str,
    demo_inputs: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["hotspots", "--config", str(demo_inputs), "--out", str(tmp_path / "out"), *args])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1, err
    error_line, _, fix = err.partition("How to fix:")
    assert message in error_line, err
    assert hint in fix, err
    assert not (tmp_path / "out" / "hotspots.gpkg").exists()


def test_a_bad_layer_in_the_large_mode_gives_a_clear_error(
    demo_inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = tmp_path / "inputs"
    shutil.copytree(demo_inputs.parent, inputs)
    raw = yaml.safe_load((inputs / "basin.yaml").read_text())
    raw["outlet"] = [10.0, 50.0]
    (inputs / "basin.yaml").write_text(yaml.safe_dump(raw))
    code = main(
        ["hotspots", "--config", str(inputs / "basin.yaml"), "--out", str(tmp_path / "out"), "--tile", "64"]
    )
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1, err
    assert "Traceback" not in err
    error_line, _, fix = err.partition("How to fix:")
    assert re.search("outlet .* lies outside the grid", error_line), err
    assert "inside the DEM" in fix
    assert not (tmp_path / "out" / "hotspots.gpkg").exists()


def test_large_mode_on_dask_workers_writes_the_same(demo_inputs: Path, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from plastic_hotspots.cluster import ClusterOptions, open_cluster

    config = load_config(demo_inputs)
    run_large(config, tmp_path / "serial", tile=96)
    with open_cluster(ClusterOptions(workers=2)) as cluster:
        run_large(config, tmp_path / "dask", tile=96, mapper=cluster.map_unordered)
    for name, _, _ in LARGE_LAYERS:
        serial, _ = read_band(tmp_path / "serial" / f"{name}.tif")
        dask, _ = read_band(tmp_path / "dask" / f"{name}.tif")
        np.testing.assert_array_equal(dask, serial, err_msg=name)
    for kind in ("leakage", "accumulation"):
        serial_spots = gpd.read_file(tmp_path / "serial" / "hotspots.gpkg", layer=f"{kind}_hotspots")
        dask_spots = gpd.read_file(tmp_path / "dask" / "hotspots.gpkg", layer=f"{kind}_hotspots")
        assert dask_spots.drop(columns="geometry").equals(serial_spots.drop(columns="geometry"))


def test_a_failed_large_run_leaves_the_earlier_result_whole(
    demo_inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import plastic_hotspots.maps.large.run as large

    out = tmp_path / "out"
    assert main(["hotspots", "--config", str(demo_inputs), "--out", str(out), "--tile", "96"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    # A second run with other figures fails after writing its rasters, before its GeoPackage.
    raw = yaml.safe_load(demo_inputs.read_text())
    raw.setdefault("params", {}).setdefault("zone_defaults", {})["generation_kg_per_cap_day"] = 1.5
    other = demo_inputs.with_name("other.yaml")
    other.write_text(yaml.safe_dump(raw))

    def fail_late(*args: object, **kwargs: object) -> None:
        raise LayerError("the disk went away", hint="free some space")

    monkeypatch.setattr(large, "write_large_gpkg", fail_late)
    assert main(["hotspots", "--config", str(other), "--out", str(out), "--tile", "96"]) == 1
    assert "the disk went away" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before  # the old result, whole
    assert (out / ".work").is_dir()  # the tiles stay for a resume
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []  # no partial folder left
