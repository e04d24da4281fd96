"""Bad layers through the real command line: each gives exit code 1, what is wrong and how to fix it."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import yaml

from plastic_hotspots.cli import main
from plastic_hotspots.maps.demo import generate_demo_basin


@pytest.fixture(scope="module")
def demo_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_demo_basin(tmp_path_factory.mktemp("bad-layers")).parent


def _rewrite_raster(path: Path, change: Callable[[np.ndarray, dict], tuple[np.ndarray, dict]]) -> None:
    with rasterio.open(path) as src:
        values, profile = src.read(1), dict(src.profile)
    values, profile = change(values, profile)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)


def _config(inputs: Path, **changes: object) -> None:
    path = inputs / "basin.yaml"
    raw = yaml.safe_load(path.read_text())
    raw.update(changes)
    path.write_text(yaml.safe_dump(raw))


def dem_without_crs(inputs: Path) -> None:
    _rewrite_raster(inputs / "dem.tif", lambda v, p: (v, {**p, "crs": None}))


def population_without_crs(inputs: Path) -> None:
    _rewrite_raster(inputs / "population.tif", lambda v, p: (v, {**p, "crs": None}))


def zones_without_crs(inputs: Path) -> None:
    zones = gpd.read_file(inputs / "zones.gpkg")
    (inputs / "zones.gpkg").unlink()
    zones.set_crs(None, allow_override=True).to_file(inputs / "zones.gpkg")


def observations_without_crs(inputs: Path) -> None:
    obs = gpd.read_parquet(inputs / "observations.parquet")
    obs.set_crs(None, allow_override=True).to_parquet(inputs / "observations.parquet")


def dem_in_centimetres(inputs: Path) -> None:
    _rewrite_raster(inputs / "dem.tif", lambda v, p: (np.where(v == p["nodata"], v, v * 100.0), p))


def population_per_km2(inputs: Path) -> None:
    def per_km2(values: np.ndarray, profile: dict) -> tuple[np.ndarray, dict]:
        pixel_km2 = (profile["transform"].a * 111.32 * np.cos(np.radians(20.0))) * (
            abs(profile["transform"].e) * 110.57
        )
        return np.where(values == profile["nodata"], values, values / pixel_km2), profile

    _rewrite_raster(inputs / "population.tif", per_km2)


def zones_in_percent(inputs: Path) -> None:
    zones = gpd.read_file(inputs / "zones.gpkg")
    zones["collection_rate"] = zones["collection_rate"] * 100.0
    zones.to_file(inputs / "zones.gpkg")


def dem_nodata_everywhere(inputs: Path) -> None:
    _rewrite_raster(inputs / "dem.tif", lambda v, p: (np.full_like(v, p["nodata"]), p))


def population_nodata_everywhere(inputs: Path) -> None:
    _rewrite_raster(inputs / "population.tif", lambda v, p: (np.full_like(v, p["nodata"]), p))


def empty_area_of_interest(inputs: Path) -> None:
    raw = yaml.safe_load((inputs / "basin.yaml").read_text())
    west, south, _, north = raw["area_of_interest"]
    _config(inputs, area_of_interest=[west, south, west, north])


def area_outside_the_dem(inputs: Path) -> None:
    _config(inputs, area_of_interest=[10.0, 50.0, 10.05, 50.05], outlet=None)


def outlet_outside_the_grid(inputs: Path) -> None:
    _config(inputs, outlet=[10.0, 50.0])


def survey_of_another_place(inputs: Path) -> None:
    obs = gpd.read_parquet(inputs / "observations.parquet")
    obs.geometry = obs.geometry.translate(xoff=5.0)
    obs.to_parquet(inputs / "observations.parquet")


def survey_with_no_usable_image(inputs: Path) -> None:
    obs = gpd.read_parquet(inputs / "observations.parquet")
    obs["status"] = "corrupt"
    obs.to_parquet(inputs / "observations.parquet")


def observations_without_counts(inputs: Path) -> None:
    obs = gpd.read_parquet(inputs / "observations.parquet")
    obs.drop(columns="items").to_parquet(inputs / "observations.parquet")


def zones_with_no_features(inputs: Path) -> None:
    zones = gpd.read_file(inputs / "zones.gpkg")
    zones.iloc[0:0].to_file(inputs / "zones.gpkg")


def zones_without_their_columns(inputs: Path) -> None:
    zones = gpd.read_file(inputs / "zones.gpkg")
    zones = zones.rename(
        columns={"collection_rate": "served", "plastic_share": "plastic", "generation_kg_per_cap_day": "kg"}
    )
    zones.to_file(inputs / "zones.gpkg")


def barrier_passing_five_times_its_load(inputs: Path) -> None:
    barriers = gpd.read_file(inputs / "barriers.gpkg")
    barriers["pass_factor"] = 5.0
    barriers.to_file(inputs / "barriers.gpkg")


def dem_of_zero_bytes(inputs: Path) -> None:
    (inputs / "dem.tif").write_bytes(b"")


def population_that_is_text(inputs: Path) -> None:
    (inputs / "population.tif").write_text("people: many\n")


def zones_of_zero_bytes(inputs: Path) -> None:
    (inputs / "zones.gpkg").write_bytes(b"")


def barriers_cut_short(inputs: Path) -> None:
    data = (inputs / "barriers.gpkg").read_bytes()
    (inputs / "barriers.gpkg").write_bytes(data[:3000])  # a copy that stopped midway


def observations_that_are_text(inputs: Path) -> None:
    (inputs / "observations.parquet").write_text("image,items\na.jpg,3\n")


CASES = [
    (dem_without_crs, "DEM raster .* has no CRS", "gdal_edit"),
    (population_without_crs, "population raster .* has no CRS", "assign its CRS"),
    (zones_without_crs, "zones layer .* has no CRS", "set_crs"),
    (observations_without_crs, "observations .* have no CRS", "EPSG:4326"),
    (dem_in_centimetres, "expected metres", "metres above sea level"),
    (population_per_km2, "look like a density", "people per pixel"),
    (zones_in_percent, "collection_rate", "fractions, not percentages"),
    (dem_nodata_everywhere, "DEM raster .* nodata everywhere", "nodata value"),
    (population_nodata_everywhere, "population raster .* nodata everywhere", "nodata value"),
    (empty_area_of_interest, "area of interest .* is empty", "west < east"),
    (area_outside_the_dem, "does not overlap the basin grid", "extent and CRS"),
    (outlet_outside_the_grid, "outlet .* lies outside the grid", "inside the DEM"),
    (survey_of_another_place, "none of the .* observations .* lie inside the grid", "area_of_interest"),
    (survey_with_no_usable_image, "no usable geotagged rows", "rejects"),
    (observations_without_counts, "no `items` column", "item count"),
    (zones_with_no_features, "zones layer .* has no features", "leave `zones` out"),
    (zones_without_their_columns, "zones layer .* has none of the columns", "collection_rate: COLUMN"),
    (barrier_passing_five_times_its_load, "pass_factor must be a fraction in", "leave pass_factor empty"),
    # Broken files: the library's complaint, with the file, and how to fix it (never a traceback).
    (dem_of_zero_bytes, "could not be read: .*dem.tif", "complete and of the format"),
    (population_that_is_text, "could not be read: .*population.tif", "complete and of the format"),
    (zones_of_zero_bytes, "could not be read: .*zones.gpkg", "complete and of the format"),
    (barriers_cut_short, "could not be read: .*", "complete and of the format"),
    (observations_that_are_text, "could not be read: .*observations.parquet", "complete and of the format"),
]


@pytest.mark.parametrize(("spoil", "message", "hint"), CASES, ids=[c[0].__name__ for c in CASES])
def test_bad_layer_gives_a_clear_error(
    spoil: Callable[[Path], None],
    message: str,
    hint: str,
    demo_inputs: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # paths in messages are not wrapped mid-name
    inputs = tmp_path / "inputs"
    shutil.copytree(demo_inputs, inputs)
    spoil(inputs)
    code = main(["hotspots", "--config", str(inputs / "basin.yaml"), "--out", str(tmp_path / "out")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1, err
    assert "Traceback" not in err
    error_line, _, fix = err.partition("How to fix:")
    assert re.search(message, error_line), err
    assert hint in fix, err
    assert not (tmp_path / "out" / "hotspots.gpkg").exists()


def test_the_unspoilt_copy_runs(
    demo_inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The cases above fail because of what they spoil, not because the copied inputs are broken."""
    inputs = tmp_path / "inputs"
    shutil.copytree(demo_inputs, inputs)
    code = main(["hotspots", "--config", str(inputs / "basin.yaml"), "--out", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "hotspots.gpkg").exists()


def test_a_grid_too_large_is_refused_up_front_with_the_tiled_mode_suggested(tmp_path: Path) -> None:
    from plastic_hotspots.errors import ConfigError
    from plastic_hotspots.maps.science.basin import check_grid_fits
    from plastic_hotspots.records import GridSpec

    grid = GridSpec(crs="EPSG:32647", west=0.0, north=0.0, cell_size=1.0, width=20_000, height=20_000)
    gib = 1 << 30
    with pytest.raises(ConfigError, match=r"400,000,000 cells .* needs about 56 GiB of memory") as info:
        check_grid_fits(grid, tile=None, work_dir=tmp_path, available=8 * gib, free_disk=500 * gib)
    assert "--tile 1024" in info.value.hint
    assert "cell_size_m: 5 fits" in info.value.hint  # 150 bytes x (20 km / 5 m)^2 = 2.2 GiB < 8 GiB
    with pytest.raises(ConfigError, match="needs about 56 GiB of memory") as info:
        check_grid_fits(grid, tile=None, work_dir=tmp_path, available=8 * gib, free_disk=10 * gib)
    assert "--tile 1024 would need about 63 GiB of scratch disk, 10 GiB is free" in info.value.hint
    with pytest.raises(ConfigError, match="needs about 63 GiB of scratch disk") as info:
        check_grid_fits(grid, tile=1024, work_dir=tmp_path, available=8 * gib, free_disk=10 * gib)
    assert "--work-dir" in info.value.hint
    check_grid_fits(grid, tile=1024, work_dir=tmp_path, available=8 * gib, free_disk=500 * gib)  # fits
    check_grid_fits(grid, tile=None, work_dir=tmp_path, available=None, free_disk=None)  # unknown: no check


def _hashes(folder: Path) -> dict[str, str]:
    import hashlib

    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()
    }


def test_kill_9_of_hotspots_at_any_point_leaves_a_whole_result_for_map(
    demo_inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed after 0, 3, 8 or 12 of its files, a run over an earlier result leaves that result as it was
    (or, finished, the whole new one): `map` reads a whole result, never a mix; the next run cleans up."""
    import json
    import subprocess
    import sys
    import time

    inputs = tmp_path / "inputs"
    shutil.copytree(demo_inputs, inputs)
    _config(inputs, cell_size_m=400.0, uncertainty={"draws": 0})  # a run of seconds
    out = tmp_path / "out"
    command = ["hotspots", "--config", str(inputs / "basin.yaml"), "--out", str(out)]
    assert main(command) == 0
    old = _hashes(out)
    _config(inputs, params={"land_lambda_m": 250})  # the new result differs in every raster
    kept = 0
    for files in (0, 3, 8, 12):
        proc = subprocess.Popen(
            [sys.executable, "-m", "plastic_hotspots.cli", *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        partial = tmp_path / f".out.partial-{proc.pid}"
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if partial.is_dir() and len(list(partial.iterdir())) >= files:
                break
            time.sleep(0.01)
        proc.kill()
        proc.wait()
        now = _hashes(out)
        kept += now == old
        if now != old:  # it finished before the kill: the new result, whole
            assert set(now) == set(old)
            assert json.loads((out / "provenance.json").read_text())["parameters"]["land_lambda_m"] == 250
        assert main(["map", str(out), "--out", str(tmp_path / f"map-{files}.html")]) == 0
    assert kept >= 2  # killed while writing its files, at least at 0 and 3 of them
    capsys.readouterr()
    assert main(command) == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []  # no partial left


LAYER_FILES = [
    ("dem", "dem.tif"),
    ("population", "population.tif"),
    ("zones", "zones.gpkg"),
    ("rivers", "rivers.gpkg"),
    ("barriers", "barriers.gpkg"),
    ("observations", "observations.parquet"),
    ("boundaries", "districts.gpkg"),
]


@pytest.mark.parametrize("broken", ["zero_bytes", "text", "missing", "header_cut"])
@pytest.mark.parametrize(("layer", "file"), LAYER_FILES, ids=[layer for layer, _ in LAYER_FILES])
def test_every_layer_file_is_checked_before_the_model_starts(
    layer: str, file: str, broken: str, demo_inputs: Path, tmp_path: Path
) -> None:
    from plastic_hotspots.maps.config import load_config
    from plastic_hotspots.maps.errors import LayerError
    from plastic_hotspots.maps.inputs.preflight import check_layer_files

    inputs = tmp_path / "inputs"
    shutil.copytree(demo_inputs, inputs)
    check_layer_files(load_config(inputs / "basin.yaml"))  # the unspoilt copy passes
    path = inputs / file
    if broken == "zero_bytes":
        path.write_bytes(b"")
    elif broken == "text":
        path.write_text("not a layer, just text\n")
    elif broken == "missing":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[:200])  # a copy that stopped inside the header
    with pytest.raises(LayerError) as info:
        check_layer_files(load_config(inputs / "basin.yaml"))
    message = str(info.value)
    assert message.startswith(f"{layer} file not found" if broken == "missing" else f"the {layer} file")
    assert file in message


@pytest.mark.parametrize("file", ["zones.gpkg", "rivers.gpkg", "barriers.gpkg", "districts.gpkg"])
def test_a_vector_layer_without_crs_is_refused_before_the_model_starts(
    file: str, demo_inputs: Path, tmp_path: Path
) -> None:
    from plastic_hotspots.maps.config import load_config
    from plastic_hotspots.maps.errors import CRSError
    from plastic_hotspots.maps.inputs.preflight import check_layer_files

    inputs = tmp_path / "inputs"
    shutil.copytree(demo_inputs, inputs)
    frame = gpd.read_file(inputs / file).set_crs(None, allow_override=True)
    (inputs / file).unlink()
    frame.to_file(inputs / file)
    with pytest.raises(CRSError, match=f"{file} has no CRS"):
        check_layer_files(load_config(inputs / "basin.yaml"))
