"""Coasts and sinks: the sea at the grid's edge drains out, an inland lake does not, the edge exports."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import yaml
from pyproj import Transformer
from rasterio.transform import from_origin

from plastic_hotspots.errors import ConfigError
from plastic_hotspots.maps.config import load_config
from plastic_hotspots.maps.errors import LayerError
from plastic_hotspots.maps.large.openwater import mask_open_water_tiled
from plastic_hotspots.maps.large.run import run_large
from plastic_hotspots.maps.large.store import TiledRaster
from plastic_hotspots.maps.params import HotspotParams
from plastic_hotspots.maps.science.openwater import MIN_OPEN_WATER_CELLS, mask_open_water, open_water
from plastic_hotspots.maps.wholegrid.run import run_hotspots
from plastic_hotspots.records import HotspotGrid

CRS = "EPSG:32647"
CELL = 100.0
WEST, NORTH = 600_000.0, 2_240_000.0
ROWS, COLS = 48, 64
SEA_ROWS = 8  # the coast basin's sea: its last rows, at 0 m
VALLEY = 30  # the column its river runs down


# --------------------------------------------------------------------------------------------------
# The open-water rule
# --------------------------------------------------------------------------------------------------


def _slope_east(rows: int = 30, cols: int = 30) -> np.ndarray:
    return np.fromfunction(lambda r, c: 10.0 + c, (rows, cols))


def test_a_flat_sea_at_the_edge_is_open_water() -> None:
    z = _slope_east()
    z[:, :6] = 0.0
    z[12, 6] = -2.0  # a cell below the sea beside the coast does not make the sea land
    mask = open_water(z, 0.0)
    assert mask[:, :6].all()
    assert int(mask.sum()) == 30 * 6


def test_an_inland_lake_is_not_open_water_and_a_floor_the_edge_cuts_is() -> None:
    z = _slope_east()
    assert not open_water(z, 0.0).any()  # the lowest column is flat, and one cell wide: land
    z[10:15, 12:17] = 5.0  # a flat lake below everything around it, away from the edge
    assert not open_water(z, 0.0).any()
    z[0:5, 0:6] = 3.0  # a flat lake the north edge cuts, lower than all land beside it: open water
    mask = open_water(z, 0.0)
    assert mask[0:5, 0:6].all()
    assert int(mask.sum()) == 30


def test_a_plateau_at_the_edge_above_lower_land_is_land() -> None:
    z = _slope_east()
    z[0:6, 24:30] = 50.0  # flat, on the edge, but land beside it is lower: water runs off it
    assert not open_water(z, 0.0).any()
    z[0:6, 24:30] = 0.0  # the same flat at sea level, with higher land beside it: the sea
    assert open_water(z, 0.0)[0:6, 24:30].all()


def test_a_few_flat_cells_at_sea_level_are_land_and_the_rule_can_be_turned_off() -> None:
    z = _slope_east()
    z[0:4, 0:5] = 0.0  # 20 cells, 6 of them inner (all neighbours on the flat)
    assert MIN_OPEN_WATER_CELLS > 6
    assert not open_water(z, 0.0).any()
    z[0:5, 0:5] = 0.0  # 9 inner cells
    assert int(open_water(z, 0.0).sum()) == 25
    kept = mask_open_water(z.copy(), None)
    assert np.array_equal(kept, z)
    assert np.isnan(mask_open_water(z.copy(), 0.0)[0:5, 0:5]).all()


def test_nodata_counts_as_the_edge() -> None:
    z = _slope_east()
    z[10:20, 10:20] = 0.0
    assert not open_water(z, 0.0).any()
    z[14, 14] = np.nan  # a hole in the middle of the flat: it touches nodata
    assert int(open_water(z, 0.0).sum()) == 99


def test_sea_level_is_checked_and_false_turns_it_off() -> None:
    assert HotspotParams().sea_level_m == 0.0
    assert HotspotParams.from_mapping({"sea_level_m": False}).sea_level_m is None
    assert HotspotParams.from_mapping({"sea_level_m": None}).sea_level_m is None
    with pytest.raises(ConfigError, match="sea_level_m must be a level in metres or null"):
        HotspotParams.from_mapping({"sea_level_m": "zero"})


def test_the_tiled_search_finds_what_the_whole_grid_search_finds(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    z = 5.0 + np.fromfunction(lambda r, c: 0.2 * r + 0.1 * c, (40, 50)) + rng.uniform(0, 3, (40, 50))
    # A sea that reaches the grid's edge only in the south-west, then winds through several tiles.
    z[34:40, 0:8] = 0.0
    z[20:36, 4:7] = 0.0
    z[20:23, 4:45] = 0.0
    z[3:23, 42:45] = 0.0
    z[10:14, 20:24] = 0.0  # a flat at 0 m that touches nothing: land
    z[0:4, 10:16] = 60.0  # a plateau on the edge above its neighbours: land
    z[25:32, 44:50] = 2.0  # a lake the east edge cuts, lower than all beside it: open water
    z[37, 30] = np.nan
    whole = open_water(z, 0.0)
    assert whole[34:40, 0:8].all()
    assert whole[3:23, 42:45].all()
    assert whole[25:32, 44:50].all()
    assert not whole[10:14, 20:24].any()
    assert not whole[0:4, 10:16].any()
    for tile in (7, 16, 64):
        dem = TiledRaster.from_array(tmp_path / f"dem{tile}.tiles", z, tile)
        masked = mask_open_water_tiled(dem, 0.0, tmp_path / f"work{tile}").to_array()
        assert np.array_equal(np.isnan(masked), whole | np.isnan(z)), tile


# --------------------------------------------------------------------------------------------------
# Generated basins, run through the real pipeline in both modes
# --------------------------------------------------------------------------------------------------


def _write_basin(
    folder: Path, dem: np.ndarray, *, outlet: tuple[float, float] | None = None, **params: object
) -> Path:
    """A basin config over a generated DEM (UTM, 100 m) with 20 people in every cell."""
    folder.mkdir(parents=True, exist_ok=True)
    transform = from_origin(WEST, NORTH, CELL, CELL)
    profile = {"driver": "GTiff", "height": dem.shape[0], "width": dem.shape[1], "count": 1, "crs": CRS}
    with rasterio.open(
        folder / "dem.tif", "w", **profile, dtype="float32", transform=transform, nodata=-9999.0
    ) as dst:
        dst.write(dem.astype(np.float32), 1)
    with rasterio.open(
        folder / "population.tif", "w", **profile, dtype="float32", transform=transform
    ) as dst:
        dst.write(np.full(dem.shape, 20.0, dtype=np.float32), 1)
    to_ll = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    d = 0.2 * CELL  # a box just inside the DEM: the grid is the DEM's own
    east, south = WEST + dem.shape[1] * CELL, NORTH - dem.shape[0] * CELL
    lon, lat = to_ll.transform(
        [WEST + d, east - d, east - d, WEST + d], [south + d, south + d, NORTH - d, NORTH - d]
    )
    config: dict[str, object] = {
        "name": folder.name,
        "cell_size_m": CELL,
        "crs": CRS,
        "area_of_interest": [
            max(lon[0], lon[3]),
            max(lat[0], lat[1]),
            min(lon[1], lon[2]),
            min(lat[2], lat[3]),
        ],
        "layers": {"dem": "dem.tif", "population": "population.tif"},
        "params": dict(params),
    }
    if outlet is not None:
        x, y = WEST + (outlet[1] + 0.5) * CELL, NORTH - (outlet[0] + 0.5) * CELL
        config["outlet"] = list(to_ll.transform(x, y))
    (folder / "basin.yaml").write_text(yaml.safe_dump(config))
    return folder / "basin.yaml"


def _figures(result: HotspotGrid) -> tuple[float, float, float]:
    """Into the rivers, retained, exported (kg/yr)."""
    leakage = float(np.nansum(result.layers["leakage_index"].values))
    retained = float(np.nansum(result.layers["accumulation"].values))
    return leakage, retained, float(result.provenance.parameters["exported_kg_yr"] or 0.0)


def _layer(result: HotspotGrid, name: str) -> np.ndarray:
    return np.nan_to_num(np.asarray(result.layers[name].values, dtype=np.float64), nan=0.0)


def coast_dem() -> np.ndarray:
    """Land sloping south to a flat sea at 0 m along the south edge, a valley down column 30."""
    r, c = np.mgrid[0:ROWS, 0:COLS].astype(np.float64)
    land = 1.0 + 0.5 * (ROWS - SEA_ROWS - 1 - r) + 0.3 * np.abs(c - VALLEY) + 0.01 * c
    return np.where(r >= ROWS - SEA_ROWS, 0.0, land)


def test_a_coast_exports_at_the_river_mouth_in_both_modes(tmp_path: Path) -> None:
    mouth = (ROWS - SEA_ROWS - 1, VALLEY)
    offshore = (ROWS - SEA_ROWS + 2, VALLEY + 2)  # three rows out to sea, two columns aside
    config = load_config(_write_basin(tmp_path / "coast", coast_dem(), outlet=offshore))
    result, outputs = run_hotspots(config, tmp_path / "whole")
    leakage, retained, exported = _figures(result)
    load, held = _layer(result, "river_load"), _layer(result, "accumulation")
    sea = np.zeros((ROWS, COLS), dtype=bool)
    sea[ROWS - SEA_ROWS :, :] = True
    assert np.isnan(result.layers["dem"].values[sea]).all()  # the sea is nodata
    assert not (load[sea] > 0).any()  # no river runs into the sea
    assert exported > 0.5 * leakage
    assert exported == pytest.approx(load[mouth] - held[mouth], rel=1e-12)  # what the mouth passes on
    assert abs(leakage - retained - exported) <= 1e-9 * leakage
    # The outlet given offshore snapped to the mouth: the basin is the mouth's catchment.
    area = float(gpd.read_file(outputs.vectors, layer="basin")["area_km2"].iloc[0])
    upstream = result.layers["flow_accumulation"].values
    assert area == pytest.approx(float(upstream[mouth]), rel=1e-9)
    assert area > 0.3 * (ROWS - SEA_ROWS) * COLS * CELL * CELL / 1e6
    large = run_large(config, tmp_path / "large", tile=16)
    print(
        f"coast: into rivers {leakage:,.1f} kg/yr, retained {retained:,.1f}, exported {exported:,.1f} "
        f"(tiled {large.totals['exported_kg_yr']:,.1f}), basin {area:.2f} km2"
    )
    assert large.totals["exported_kg_yr"] == pytest.approx(exported, rel=1e-9)
    assert large.totals["leakage_kg_yr"] == pytest.approx(leakage, rel=1e-9)
    with rasterio.open(large.rasters["dem"]) as src:
        assert np.isnan(src.read(1)[sea]).all()


def test_without_the_sea_rule_the_rivers_cross_the_sea(tmp_path: Path) -> None:
    config = load_config(_write_basin(tmp_path / "coast-off", coast_dem(), sea_level_m=None))
    result, _ = run_hotspots(config, tmp_path / "out")
    load = _layer(result, "river_load")
    assert (load[ROWS - SEA_ROWS :, :] > 0).any()  # what the rule prevents


def test_an_inland_sink_drains_through_its_spill_point(tmp_path: Path) -> None:
    # Land sloping south to the grid's edge (no sea), a valley down column 30 with a closed
    # depression holding a flat lake at 10 m halfway down.
    r, c = np.mgrid[0:ROWS, 0:COLS].astype(np.float64)
    dem = 5.0 + 0.5 * (ROWS - 1 - r) + 0.3 * np.abs(c - VALLEY) + 0.01 * c
    lake = (np.abs(r - 24) <= 3) & (np.abs(c - VALLEY) <= 3)
    dem[lake] = 10.0
    assert not open_water(dem, 0.0).any()
    config = load_config(_write_basin(tmp_path / "sink", dem))
    result, _ = run_hotspots(config, tmp_path / "whole")
    leakage, retained, exported = _figures(result)
    assert np.isfinite(result.layers["dem"].values[lake]).all()  # the lake is land, filled
    assert (_layer(result, "river_load")[lake] > 0).any()  # the river runs through it
    assert exported > 0.3 * leakage
    assert abs(leakage - retained - exported) <= 1e-9 * leakage
    large = run_large(config, tmp_path / "large", tile=16)
    print(
        f"inland sink: into rivers {leakage:,.1f} kg/yr, retained {retained:,.1f}, exported {exported:,.1f}"
    )
    assert large.totals["exported_kg_yr"] == pytest.approx(exported, rel=1e-9)


def test_a_basin_cut_by_the_grid_edge_exports_what_crosses_it(tmp_path: Path) -> None:
    # Land sloping west, its river leaving the grid through the west edge at row 20.
    r, c = np.mgrid[0:ROWS, 0:COLS].astype(np.float64)
    dem = 20.0 + 0.5 * c + 0.3 * np.abs(r - 20) + 0.01 * r
    config = load_config(_write_basin(tmp_path / "cut", dem))
    result, _ = run_hotspots(config, tmp_path / "whole")
    leakage, retained, exported = _figures(result)
    load, held = _layer(result, "river_load"), _layer(result, "accumulation")
    edge = (20, 0)
    assert exported > 0.3 * leakage
    assert exported == pytest.approx(load[edge] - held[edge], rel=1e-12)
    assert abs(leakage - retained - exported) <= 1e-9 * leakage
    large = run_large(config, tmp_path / "large", tile=16)
    print(f"cut basin: into rivers {leakage:,.1f} kg/yr, retained {retained:,.1f}, exported {exported:,.1f}")
    assert large.totals["exported_kg_yr"] == pytest.approx(exported, rel=1e-9)
    assert large.totals["retained_kg_yr"] == pytest.approx(retained, rel=1e-9)


def test_an_outlet_far_out_at_sea_is_refused(tmp_path: Path) -> None:
    config = load_config(_write_basin(tmp_path / "far", coast_dem(), outlet=(ROWS - 1, 5)))
    with pytest.raises(LayerError, match="the basin is empty"):
        run_hotspots(config, tmp_path / "out")
