"""What enters the rivers is retained or exported: at the grid's edge, or at an outlet inside the grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from pyproj import Transformer

from plastic_hotspots.maps.config import load_config
from plastic_hotspots.maps.demo import CRS, demo_grid, generate_demo_basin
from plastic_hotspots.maps.errors import ModelError
from plastic_hotspots.maps.large.run import run_large
from plastic_hotspots.maps.science.basin import MASS_BALANCE_TOLERANCE, check_mass_balance
from plastic_hotspots.maps.science.model import network_exits
from plastic_hotspots.maps.wholegrid.run import run_hotspots


def test_the_balance_check_passes_within_its_tolerance_and_fails_loudly_beyond() -> None:
    assert check_mass_balance(1000.0, 600.0, 400.0) == 0.0
    assert check_mass_balance(1000.0, 600.0, 399.5) == pytest.approx(5e-4)
    assert check_mass_balance(0.0, 0.0, 0.0) == 0.0
    with pytest.raises(
        ModelError, match=r"2,037,489 kg/yr enter the rivers, 885,656 are retained and 0 exported"
    ):
        check_mass_balance(2_037_489.0, 885_656.0, 0.0)
    with pytest.raises(ModelError, match="does not close"):
        check_mass_balance(1000.0, 600.0, 400.0 * (1 - 3 * MASS_BALANCE_TOLERANCE))
    with pytest.raises(ModelError):
        check_mass_balance(1000.0, float("nan"), 400.0)


def test_network_exits_are_where_a_river_drains_into_no_river() -> None:
    # a 1 x 5 strip flowing east: cells 1-3 are river; 3 drains into 4 (not a river), 4 leaves the grid
    down = np.array([1, 2, 3, 4, -1])
    rivers = np.array([False, True, True, True, False])
    assert network_exits(down, rivers).tolist() == [3]
    rivers[4] = True
    assert network_exits(down, rivers).tolist() == [4]


@pytest.fixture(scope="module")
def inland_outlet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo basin with its outlet on the main river three quarters of the way down, not at the edge."""
    config = generate_demo_basin(tmp_path_factory.mktemp("inland-outlet"))
    raw = yaml.safe_load(config.read_text())
    raw["layers"].pop("observations")  # the large mode does not read the survey
    grid = demo_grid()
    row, col = 150, 108  # on the main river (maps.demo.MAIN_STEM)
    x = grid.west + (col + 0.5) * grid.cell_size
    y = grid.north - (row + 0.5) * grid.cell_size
    lon, lat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(x, y)
    raw["outlet"] = [round(lon, 6), round(lat, 6)]
    config.write_text(yaml.safe_dump(raw))
    return config


def test_an_outlet_inside_the_grid_exports_what_passes_it(inland_outlet: Path, tmp_path: Path) -> None:
    config = load_config(inland_outlet)
    result, _ = run_hotspots(config, tmp_path / "whole")
    leakage = float(result.layers["leakage_index"].values.sum())
    retained = float(result.layers["accumulation"].values.sum())
    exported = float(result.provenance.parameters["exported_kg_yr"] or 0.0)
    assert exported > 0.1 * leakage  # the main river carries plenty past the outlet
    assert abs(leakage - retained - exported) <= 1e-9 * leakage
    large = run_large(config, tmp_path / "large", tile=64)
    assert large.totals["exported_kg_yr"] == pytest.approx(exported, rel=1e-9)
    assert large.totals["leakage_kg_yr"] == pytest.approx(leakage, rel=1e-9)
    assert large.totals["retained_kg_yr"] == pytest.approx(retained, rel=1e-9)


@pytest.mark.realdata
def test_the_maha_oya_exports_at_its_mouth_on_the_coast(shared_data: Path, tmp_path: Path) -> None:
    """The real basin: its mouth on the coast (the sea, 0 m in SRTM, made nodata), the load past it exported.

    The two SRTM tiles are mosaicked here and people spread evenly (50 per 3" pixel): this checks the
    routing and the balance on real terrain, not the leakage figures.
    """
    import geopandas as gpd
    import rasterio
    from rasterio.merge import merge

    data = shared_data / "maha_oya_srilanka"
    tiles = [rasterio.open(data / "dem" / name) for name in ("n07_e079_3arc_v2.tif", "n07_e080_3arc_v2.tif")]
    mosaic, transform = merge(tiles, bounds=(79.8, 7.05, 80.65, 7.55))
    profile = {**tiles[0].profile, "driver": "GTiff", "height": mosaic.shape[1], "width": mosaic.shape[2]}
    profile["transform"] = transform
    with rasterio.open(tmp_path / "dem.tif", "w", **profile) as dst:
        dst.write(mosaic)
    profile.update(dtype="float32", nodata=-1.0)
    with rasterio.open(tmp_path / "population.tif", "w", **profile) as dst:
        dst.write(np.full(mosaic.shape[1:], 50.0, dtype=np.float32), 1)
    rivers = data / "rivers" / "hydrorivers_maha_oya_41404427.geojson"
    config = {
        "name": "Maha Oya (terrain check)",
        "cell_size_m": 200,
        "outlet": [79.844, 7.273],  # the mouth (SOURCE.md)
        "layers": {"dem": "dem.tif", "population": "population.tif", "rivers": str(rivers)},
    }
    (tmp_path / "basin.yaml").write_text(yaml.safe_dump(config))
    result, outputs = run_hotspots(load_config(tmp_path / "basin.yaml"), tmp_path / "out")
    leakage = float(result.layers["leakage_index"].values.sum())
    retained = float(result.layers["accumulation"].values.sum())
    exported = float(result.provenance.parameters["exported_kg_yr"] or 0.0)
    area = float(gpd.read_file(outputs.vectors, layer="basin")["area_km2"].iloc[0])
    published = float(gpd.read_file(rivers)["UPLAND_SKM"].max())
    sea_km2 = float(np.isnan(result.layers["dem"].values).sum()) * 0.04  # open water made nodata
    print(
        f"Maha Oya: basin {area:.0f} km2 (HydroRIVERS {published:.0f}); into rivers {leakage:,.0f} kg/yr, "
        f"retained {retained:,.0f}, exported {exported:,.0f}; sea {sea_km2:,.0f} km2"
    )
    # Without the sea rule the rivers ran on across the sea and exported 69 %; now they stop at the coast.
    assert sea_km2 > 100
    assert exported > 0.7 * leakage
    assert abs(leakage - retained - exported) <= 1e-6 * leakage
    assert abs(area - published) < 0.1 * published
