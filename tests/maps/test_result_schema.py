"""The result-directory schema (maps.io.results) says what the model writes: names, descriptions, units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from render_fixture import ALL_LAYERS

from plastic_hotspots.cli import main
from plastic_hotspots.maps.demo import DemoOutputs, run_demo
from plastic_hotspots.maps.io.results import (
    FILES,
    FUSION_JSON,
    FUSION_PNG,
    GEOPACKAGE,
    PROVENANCE_FILE,
    RASTERS,
    RESULT_LAYERS,
    VECTORS,
    WORK_FOLDER,
)

# How pyogrio names the geometry type of a layer -> the schema's kind of feature.
FEATURES = {
    "Polygon": "polygon",
    "MultiPolygon": "polygon",
    "LineString": "line",
    "MultiLineString": "line",
    "Point": "point",
    "MultiPoint": "point",
    "Unknown": "none",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoOutputs:
    return run_demo(tmp_path_factory.mktemp("schema-demo"))


@pytest.fixture(scope="module")
def tiled(demo: DemoOutputs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo basin run in the large mode (``hotspots --tile 64``)."""
    out = tmp_path_factory.mktemp("schema-tiled") / "out"
    assert main(["hotspots", "--config", str(demo.config), "--out", str(out), "--tile", "64"]) == 0
    return out


@pytest.fixture(params=["whole grid", "large mode"])
def result_dir(request: pytest.FixtureRequest, demo: DemoOutputs, tiled: Path) -> Path:
    return demo.hotspots_dir if request.param == "whole grid" else tiled


def test_every_raster_written_is_in_the_schema_with_its_description_and_unit(result_dir: Path) -> None:
    written = sorted(result_dir.glob("*.tif"))
    assert {path.name for path in written} == {raster.filename for raster in RASTERS.values()}
    for path in written:
        raster = RASTERS[path.stem]
        assert raster.path(result_dir) == path
        with rasterio.open(path) as src:
            assert src.descriptions[0] == raster.description, path.name
            assert src.tags(1)["unit"] == raster.unit, path.name


def test_every_raster_holds_finite_values_in_its_documented_range(result_dir: Path) -> None:
    for raster in RASTERS.values():
        with rasterio.open(raster.path(result_dir)) as src:
            values = src.read(1, masked=True)
        data = np.asarray(values.compressed(), dtype=np.float64)
        data = data[~np.isnan(data)]  # NaN is the documented "no data"
        assert data.size > 0, raster.name
        assert np.isfinite(data).all(), raster.name
        assert raster.low <= data.min(), (raster.name, float(data.min()))
        assert data.max() <= raster.high, (raster.name, float(data.max()))


def test_every_geopackage_layer_is_in_the_schema_with_its_kind_of_feature(result_dir: Path) -> None:
    listed = pyogrio.list_layers(GEOPACKAGE.path(result_dir))
    assert len(listed) >= 3
    for name, geometry in listed:
        assert str(name) in VECTORS, f"layer {name!r} of hotspots.gpkg is not in VECTORS"
        assert FEATURES[str(geometry)] == VECTORS[str(name)].features, name
    assert {"basin", "provenance"} <= {str(name) for name, _ in listed}


def test_every_file_written_is_in_the_schema(demo: DemoOutputs, tiled: Path) -> None:
    known = {raster.filename for raster in RASTERS.values()} | {file.filename for file in FILES}
    whole = {path.name for path in demo.hotspots_dir.iterdir()}
    assert whole == known  # the demo has a survey, so the fusion files are there too
    large = known - {FUSION_JSON.filename, FUSION_PNG.filename} | {WORK_FOLDER.filename}
    assert {path.name for path in tiled.iterdir()} == large
    assert PROVENANCE_FILE.path(tiled).is_file()


def test_the_schema_reads_as_writers_want_it() -> None:
    assert RASTERS["river_load"].filename == "river_load.tif"
    assert (RASTERS["river_load"].description, RASTERS["river_load"].unit) == ("load carried", "kg/yr")
    assert RASTERS["population"].kind == "count"
    assert list(RASTERS) == [raster.name for raster in RASTERS.values()]
    made = [name for name in VECTORS if name not in {"detections", "admin_boundaries", "provenance"}]
    assert list(RESULT_LAYERS) == made
    assert RESULT_LAYERS[0] == "basin"
    assert set(ALL_LAYERS) <= set(VECTORS)  # the renderers' test directory holds only schema layers
    assert {name for name, layer in VECTORS.items() if layer.copied} == {"detections", "admin_boundaries"}
    with pytest.raises(TypeError):
        RASTERS["dem"] = RASTERS["population"]  # type: ignore[index]
