"""Layers as users have them: a DEM in tiles, population as census polygons, zones from any columns."""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import yaml
from rasterio.transform import from_origin
from rasterio.warp import Resampling, calculate_default_transform, reproject
from shapely.geometry import Polygon, box

from plastic_hotspots.errors import ConfigError
from plastic_hotspots.maps.config import (
    PopulationPolygons,
    ZoneTable,
    ZoneValue,
    load_config,
    parse_config,
)
from plastic_hotspots.maps.errors import LayerError, LayerWarning
from plastic_hotspots.maps.grid import grid_for_bounds
from plastic_hotspots.maps.inputs.divisions import read_divisions, spread_population
from plastic_hotspots.maps.inputs.population import load_population
from plastic_hotspots.maps.inputs.rasters import dem_bounds_lonlat, load_dem
from plastic_hotspots.maps.inputs.vectors import rasterize_zones, read_zones
from plastic_hotspots.maps.large.inputs import read_dem_tiled, regrid_population_tiled
from plastic_hotspots.maps.params import ZoneDefaults
from plastic_hotspots.maps.science.basin import basin_grid, run_provenance
from plastic_hotspots.records import GridSpec

UTM = "EPSG:32647"
RES = 0.001  # degrees, about 110 m
WEST, NORTH = 100.0, 20.3


def _write(path: Path, values: np.ndarray, transform: object, crs: str, nodata: float = -9999.0) -> Path:
    profile = {
        "driver": "GTiff",
        "height": values.shape[0],
        "width": values.shape[1],
        "count": 1,
        "dtype": "float32",
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values.astype(np.float32), 1)
    return path


def _terrain(rows: int, cols: int) -> np.ndarray:
    r, c = np.mgrid[0:rows, 0:cols]
    return 200.0 + 0.8 * r + 0.5 * c + 20.0 * np.sin(r / 15.0) * np.cos(c / 20.0)


@pytest.fixture(scope="module")
def dem_tiles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One lon/lat DEM, its three tiles (one row/column of overlap, like SRTM), one tile also in UTM."""
    root = tmp_path_factory.mktemp("tiles")
    rows, cols = 240, 300
    values = _terrain(rows, cols)
    whole = _write(root / "whole.tif", values, from_origin(WEST, NORTH, RES, RES), "EPSG:4326")
    # west half, north-east quarter, south-east quarter; each overlaps its neighbours by one pixel
    parts = {"west": (0, rows, 0, 151), "ne": (0, 121, 150, cols), "se": (120, rows, 150, cols)}
    tiles = {}
    for name, (r0, r1, c0, c1) in parts.items():
        transform = from_origin(WEST + c0 * RES, NORTH - r0 * RES, RES, RES)
        tiles[name] = _write(root / f"{name}.tif", values[r0:r1, c0:c1], transform, "EPSG:4326")
    # the south-east tile again, in UTM (resampled once, finer than the grid)
    with rasterio.open(tiles["se"]) as src:
        transform, width, height = calculate_default_transform(
            src.crs, UTM, src.width, src.height, *src.bounds, resolution=50.0
        )
        utm = np.full((height, width), -9999.0, dtype=np.float32)
        reproject(
            rasterio.band(src, 1),
            utm,
            dst_transform=transform,
            dst_crs=UTM,
            dst_nodata=-9999.0,
            resampling=Resampling.bilinear,
        )
    tiles["se_utm"] = _write(root / "se_utm.tif", utm, transform, UTM)
    grid = grid_for_bounds((WEST + 0.01, NORTH - 0.23, WEST + 0.29, NORTH - 0.01), 150.0, UTM)
    return {"whole": whole, "tiles": tiles, "grid": grid}


def test_tiles_in_one_crs_give_the_single_dem_exactly(dem_tiles: dict[str, object], tmp_path: Path) -> None:
    grid: GridSpec = dem_tiles["grid"]  # type: ignore[assignment]
    tiles: dict[str, Path] = dem_tiles["tiles"]  # type: ignore[assignment]
    one = load_dem(dem_tiles["whole"], grid)  # type: ignore[arg-type]
    listed = [tiles["west"], tiles["ne"], tiles["se"]]
    mosaic = load_dem(listed, grid)
    assert np.isfinite(one).all()
    np.testing.assert_array_equal(mosaic, one)
    large = read_dem_tiled(listed, grid, tmp_path / "dem.tiles", 37).to_array()
    np.testing.assert_array_equal(
        large, read_dem_tiled(dem_tiles["whole"], grid, tmp_path / "one", 37).to_array()
    )  # type: ignore[arg-type]
    assert dem_bounds_lonlat(listed) == pytest.approx(dem_bounds_lonlat([dem_tiles["whole"]]))  # type: ignore[list-item]


def test_tiles_in_two_crss_mosaic_to_the_same_dem(dem_tiles: dict[str, object], tmp_path: Path) -> None:
    grid: GridSpec = dem_tiles["grid"]  # type: ignore[assignment]
    tiles: dict[str, Path] = dem_tiles["tiles"]  # type: ignore[assignment]
    one = load_dem(dem_tiles["whole"], grid)  # type: ignore[arg-type]
    listed = [tiles["west"], tiles["se_utm"], tiles["ne"]]
    for mosaic in (
        load_dem(listed, grid),
        read_dem_tiled(listed, grid, tmp_path / "dem.tiles", 50).to_array(),
    ):
        assert np.isfinite(mosaic).all()  # no hole at the seams
        assert np.abs(mosaic - one).max() < 0.5  # metres; the UTM tile was resampled once more
        se = one > 0  # every cell
        assert np.abs(mosaic[se] - one[se]).mean() < 0.05


def test_a_missing_tile_is_named(dem_tiles: dict[str, object], tmp_path: Path) -> None:
    grid: GridSpec = dem_tiles["grid"]  # type: ignore[assignment]
    tiles: dict[str, Path] = dem_tiles["tiles"]  # type: ignore[assignment]
    missing = tmp_path / "n07_e081.tif"
    with pytest.raises(LayerError, match=r"DEM file not found: .*n07_e081\.tif"):
        load_dem([tiles["west"], missing], grid)
    with pytest.raises(LayerError, match=r"DEM file not found: .*n07_e081\.tif"):
        read_dem_tiled([tiles["west"], missing], grid, tmp_path / "d", 50)


def test_the_grid_and_provenance_cover_every_tile(dem_tiles: dict[str, object], tmp_path: Path) -> None:
    tiles: dict[str, Path] = dem_tiles["tiles"]  # type: ignore[assignment]
    names = [tiles["west"], tiles["ne"], tiles["se_utm"]]
    (tmp_path / "basin.yaml").write_text(
        yaml.safe_dump({"crs": UTM, "cell_size_m": 150, "layers": {"dem": [str(p) for p in names]}})
    )
    config = load_config(tmp_path / "basin.yaml")
    assert config.dem == tuple(names)
    grid = basin_grid(config)
    west, _, east, _ = grid.bounds
    single = grid_for_bounds(dem_bounds_lonlat(dem_tiles["whole"]), 150.0, UTM)  # type: ignore[arg-type]
    assert (grid.width, grid.height) == pytest.approx((single.width, single.height), abs=2)
    provenance = run_provenance(config, grid, {})
    assert [Path(p).name for p in provenance.inputs] == ["west.tif", "ne.tif", "se_utm.tif"]
    hashes = {k: v for k, v in provenance.parameters.items() if k.startswith("dem_tile_sha256.")}
    assert sorted(hashes) == [
        "dem_tile_sha256.ne.tif",
        "dem_tile_sha256.se_utm.tif",
        "dem_tile_sha256.west.tif",
    ]
    assert all(isinstance(v, str) and len(v) == 64 for v in hashes.values())
    assert east > west


# --- population as polygons ------------------------------------------------------------------------

GRID = GridSpec(crs=UTM, west=500_000.0, north=2_200_000.0, cell_size=100.0, width=40, height=30)


def _divisions(path: Path) -> Path:
    """Four divisions in the grid's CRS: a square, a bow-tie (self-intersecting), a clockwise square,
    one half outside the grid; plus rows with no count and a negative count."""
    x0, y0 = GRID.west, GRID.north
    square = box(x0 + 150, y0 - 850, x0 + 950, y0 - 250)  # 800 x 600 m, inside
    bowtie = Polygon(
        [(x0 + 1200, y0 - 200), (x0 + 2000, y0 - 1000), (x0 + 2000, y0 - 200), (x0 + 1200, y0 - 1000)]
    )
    clockwise = Polygon(
        [(x0 + 300, y0 - 2000), (x0 + 300, y0 - 1200), (x0 + 1100, y0 - 1200), (x0 + 1100, y0 - 2000)]
    )
    half_out = box(x0 + 3600, y0 - 2500, x0 + 4400, y0 - 1500)  # x from 3600 to 4400; the grid ends at 4000
    frame = gpd.GeoDataFrame(
        {
            "people": [4800.0, 3000.0, 1000.0, 2000.0, np.nan, -5.0],
            "served": [30.0, 10.0, 0.0, 50.0, 1.0, 1.0],
            "households": [100.0, 40.0, 0.0, 60.0, 2.0, 2.0],
        },
        geometry=[
            square,
            bowtie,
            clockwise,
            half_out,
            box(x0, y0 - 100, x0 + 100, y0),
            box(x0, y0 - 100, x0 + 100, y0),
        ],
        crs=UTM,
    )
    frame.to_file(path, driver="GeoJSON")
    return path


def test_polygons_spread_by_area_keeping_the_sum(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    layer = PopulationPolygons(_divisions(tmp_path / "div.geojson"), "people")
    with (
        pytest.warns(LayerWarning, match="2 of 6 rows have a missing or negative 'people'"),
        pytest.warns(LayerWarning, match=r"1 invalid geometries repaired, 1 rings rewound"),
        caplog.at_level(logging.WARNING),
    ):
        people = load_population(layer, GRID)
    # square (all), bow-tie (all, repaired to two triangles), clockwise (all), half of the last
    assert people.sum() == pytest.approx(4800 + 3000 + 1000 + 1000, rel=1e-12)
    assert "1,000 people in 1 divisions lie outside the grid" in caplog.text
    # The square covers cells 1.5..9.5 x 2.5..8.5: whole cells get 4800 / 48 = 100, edge cells half.
    assert people[3, 3] == pytest.approx(100.0)
    assert people[3, 1] == pytest.approx(50.0)
    assert people[2, 1] == pytest.approx(25.0)
    # The bow-tie repairs to two triangles (left and right, x 1200-1600 and 1600-2000) meeting at its
    # centre (x 1600, y 600 below the top): no people in the wedges above and below the centre.
    assert people[5, 12] > 0
    assert people[5, 19] > 0
    assert people[2, 16] == people[8, 16] == 0.0
    assert people[:10, 12:20].sum() == pytest.approx(3000.0)
    # The half outside puts 1000 in the 4 x 10 cells inside: 25 each.
    assert people[15:25, 36:40] == pytest.approx(np.full((10, 4), 25.0))


@pytest.mark.filterwarnings("ignore::plastic_hotspots.maps.errors.LayerWarning")
def test_polygon_population_on_tiles_equals_the_whole_grid(tmp_path: Path) -> None:
    layer = PopulationPolygons(_divisions(tmp_path / "div.geojson"), "people")
    whole = spread_population(read_divisions(layer, GRID))
    tiled = regrid_population_tiled(layer, GRID, tmp_path / "pop.tiles", 7).to_array()
    np.testing.assert_array_equal(tiled, whole)


def test_a_count_column_that_is_not_there_is_named(tmp_path: Path) -> None:
    layer = PopulationPolygons(_divisions(tmp_path / "div.geojson"), "total_population")
    with pytest.raises(LayerError, match="no column 'total_population'"):
        load_population(layer, GRID)


# --- zones from any columns ------------------------------------------------------------------------


def test_zone_figures_from_columns_ratios_and_numbers(tmp_path: Path) -> None:
    path = _divisions(tmp_path / "div.geojson")
    table = ZoneTable(
        path,
        (
            ("collection_rate", ZoneValue(column="served", denominator="households")),
            ("generation_kg_per_cap_day", ZoneValue(number=0.75)),
        ),
    )
    defaults = ZoneDefaults()
    with pytest.warns(
        LayerWarning, match=r"1 of 6 zones have no finite collection_rate \(served / households\)"
    ):
        zones = read_zones(table, defaults)
    assert zones["collection_rate"].tolist()[:2] == [0.3, 0.25]
    assert np.isnan(zones["collection_rate"].iloc[2])  # 0 of 0 households: the default
    assert "plastic_share" not in zones.columns
    cells = rasterize_zones(zones, GRID, defaults)
    assert cells.collection_rate[5, 5] == pytest.approx(0.3)
    assert cells.collection_rate[15, 7] == defaults.collection_rate  # the 0-household division
    assert cells.generation_kg_per_cap_day[5, 5] == 0.75
    assert cells.plastic_share[5, 5] == defaults.plastic_share


def test_a_ratio_outside_0_1_names_its_columns(tmp_path: Path) -> None:
    path = _divisions(tmp_path / "div.geojson")
    table = ZoneTable(path, (("plastic_share", ZoneValue(column="households", denominator="served")),))
    with (
        pytest.warns(LayerWarning),
        pytest.raises(LayerError, match=r"plastic_share from households / served"),
    ):
        read_zones(table)
    with pytest.raises(LayerError, match="no column 'collected'"):
        read_zones(ZoneTable(path, (("collection_rate", ZoneValue(column="collected")),)))


def test_the_three_forms_parse(tmp_path: Path) -> None:
    config = parse_config(
        {
            "layers": {
                "dem": ["a.tif", "b.tif"],
                "population": {"path": "div.geojson", "count": "total_population"},
                "zones": {
                    "path": "census.geojson",
                    "collection_rate": "collected_by_local_authorities / total_households",
                    "generation_kg_per_cap_day": 0.6,
                    "plastic_share": "plastic",
                },
            }
        },
        tmp_path,
    )
    assert config.dem == (tmp_path / "a.tif", tmp_path / "b.tif")
    assert config.population == PopulationPolygons(tmp_path / "div.geojson", "total_population")
    assert isinstance(config.zones, ZoneTable)
    assert config.zones.get("collection_rate") == ZoneValue(
        column="collected_by_local_authorities", denominator="total_households"
    )
    assert config.zones.get("generation_kg_per_cap_day") == ZoneValue(number=0.6)
    assert config.zones.get("plastic_share") == ZoneValue(column="plastic")
    assert [Path(p).name for p in config.inputs()] == ["a.tif", "b.tif", "div.geojson", "census.geojson"]
    plain = parse_config({"layers": {"dem": "d.tif", "population": "p.tif", "zones": "z.gpkg"}}, tmp_path)
    assert (plain.dem, plain.population, plain.zones) == (
        tmp_path / "d.tif",
        tmp_path / "p.tif",
        tmp_path / "z.gpkg",
    )


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ({"population": {"path": "x.geojson"}}, "has no `count`: expected the key\\(s\\) path, count"),
        (
            {"population": {"path": "x", "count": "n", "weight": 2}},
            r"unknown key\(s\) in `layers.population`: weight",
        ),
        ({"population": ["a.tif", "b.tif"]}, "`layers.population` must be a file path or a mapping"),
        ({"population": {"path": "x", "count": 3}}, "`layers.population.count` must be a column name"),
        ({"zones": {"collection_rate": 0.5}}, "`layers.zones` has no `path`"),
        ({"zones": {"path": "z", "colour": "red"}}, r"unknown key\(s\) in `layers.zones`: colour"),
        (
            {"zones": {"path": "z", "collection_rate": 1.5}},
            r"`layers.zones.collection_rate` must be in \[0, 1\]",
        ),
        ({"zones": {"path": "z", "plastic_share": "a / b / c"}}, "a ratio of two columns"),
        ({"zones": {"path": "z", "plastic_share": [1]}}, "a ratio of two columns"),
        ({"zones": ["z.gpkg"]}, "`layers.zones` must be a file path or a mapping"),
        ({"dem": []}, "`layers.dem` is an empty list"),
        ({"dem": {"path": "d.tif"}}, "`layers.dem` must be a file path or a list of tile paths"),
        ({"dem": ["a.tif", 3]}, r"`layers.dem\[\]` must be a file path"),
        ({"rivers": ["r.gpkg"]}, "`layers.rivers` must be a file path"),
    ],
)
def test_bad_layer_shapes_say_what_was_expected(
    layers: dict[str, object], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"layers": {"dem": "d.tif", **layers}}, tmp_path)


# --- the real basin -------------------------------------------------------------------------------


@pytest.mark.realdata
def test_the_maha_oya_layers_as_published(shared_data: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Three SRTM tiles as a list, the GN divisions' census counts and their household collection."""
    data = shared_data / "maha_oya_srilanka"
    census = data / "census" / "gnd_mahaoya_region_census2012.geojson"
    config = parse_config(
        {
            "crs": "EPSG:32644",
            "cell_size_m": 100,
            "area_of_interest": [79.8, 7.05, 80.65, 7.55],
            "layers": {
                "dem": [f"dem/{n}_3arc_v2.tif" for n in ("n07_e079", "n07_e080", "n06_e080")],
                "population": {
                    "path": "census/gnd_mahaoya_region_census2012.geojson",
                    "count": "total_population",
                },
                "zones": {
                    "path": "census/gnd_mahaoya_region_census2012.geojson",
                    "collection_rate": "collected_by_local_authorities / total_households",
                },
            },
        },
        data,
    )
    grid = basin_grid(config)
    dem = load_dem(config.dem, grid)
    assert np.isfinite(dem).all()  # no hole at the seam at 80 E
    seam = round((80.0 - 79.8) / 0.85 * grid.width)
    assert np.abs(np.diff(dem[:, seam - 3 : seam + 3], axis=1)).max() < 150.0
    assert config.population is not None
    assert config.zones is not None
    with pytest.warns(LayerWarning, match="73 invalid geometries repaired"), caplog.at_level(logging.WARNING):
        people = load_population(config.population, grid)
    with pytest.warns(LayerWarning, match="21 of 3051 zones have no finite collection_rate"):
        zone_frame = read_zones(config.zones, ZoneDefaults())
    zones = rasterize_zones(zone_frame, grid, ZoneDefaults())
    frame = gpd.read_file(census)
    total = float(frame["total_population"].sum())
    inside = frame.to_crs(grid.crs)
    inside = inside[inside.geometry.make_valid().within(box(*grid.bounds))]
    within = float(inside["total_population"].sum())
    ratio = float(frame["collected_by_local_authorities"].sum() / frame["total_households"].sum())
    weighted = float((people * zones.collection_rate).sum() / people.sum())
    print(
        f"Maha Oya grid {grid.width} x {grid.height}: DEM {np.nanmin(dem):.0f}-{np.nanmax(dem):.0f} m; "
        f"{people.sum():,.0f} people (census {total:,.0f}; wholly inside {within:,.0f}); collection "
        f"rate {zones.collection_rate.mean():.3f} per cell, {weighted:.3f} per person (census {ratio:.3f})"
    )
    assert within <= people.sum() <= total
    assert "lie outside the grid" in caplog.text
    assert zones.collection_rate.min() >= 0.0
    assert zones.collection_rate.max() <= 1.0
    assert weighted == pytest.approx(ratio, abs=0.02)
