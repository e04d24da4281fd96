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
