from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.enums import MaskFlags
from rasterio.transform import Affine, from_origin
from shapely.geometry import LineString, Point

from plastic_hotspots.maps.errors import CRSError, LayerError
from plastic_hotspots.maps.grid import grid_for_bounds, utm_crs_for
from plastic_hotspots.maps.inputs import population as layers
from plastic_hotspots.maps.inputs.population import load_population, splat_counts
from plastic_hotspots.maps.inputs.rasters import load_dem, raster_bounds_lonlat
from plastic_hotspots.maps.inputs.vectors import load_barriers, rasterize_zones, read_vector
from plastic_hotspots.maps.io.bands import read_band_nan
from plastic_hotspots.maps.params import BarrierPass, ZoneDefaults
from plastic_hotspots.records import GridSpec


def write_raster(
    path: Path,
    values: np.ndarray,
    crs: str | None,
    west: float,
    north: float,
    px: float,
    nodata: float | None = None,
) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=values.shape[1],
        height=values.shape[0],
        count=1,
        dtype="float64",
        crs=crs,
        transform=from_origin(west, north, px, px),
        nodata=nodata,
    ) as dst:
        dst.write(values, 1)
    return path


@pytest.mark.parametrize("cell_size", [50.0, 100.0, 250.0, 1000.0])
def test_population_regrid_keeps_the_total(tmp_path: Path, cell_size: float) -> None:
    rng = np.random.default_rng(3)
    people = rng.gamma(0.5, 40.0, size=(60, 80))
    path = write_raster(tmp_path / "pop.tif", people, "EPSG:4326", 85.25, 27.76, 1 / 1200)
    # A grid generously covering the raster, so every pixel lands somewhere.
    grid = grid_for_bounds((85.24, 27.70, 85.33, 27.77), cell_size)
    out = load_population(path, grid)
    assert out.sum() == pytest.approx(people.sum(), rel=1e-9)
    assert out.min() >= 0


def splat_reference(counts: np.ndarray, transform: Affine, crs: str, grid: GridSpec, k: int) -> np.ndarray:
    """Every sub-pixel centre through pyproj, added pass by pass in row-major order."""
    to_grid = Transformer.from_crs(crs, grid.crs, always_xy=True)
    src_r, src_c = np.nonzero(np.isfinite(counts) & (counts != 0))
    values = counts[src_r, src_c] / (k * k)
    out = np.zeros(grid.shape)
    for dy in (np.arange(k) + 0.5) / k:
        for dx in (np.arange(k) + 0.5) / k:
            xs, ys = transform @ (src_c + dx, src_r + dy)
            px, py = to_grid.transform(xs, ys)
            c = np.floor((px - grid.west) / grid.cell_size).astype(np.int64)
            r = np.floor((grid.north - py) / grid.cell_size).astype(np.int64)
            inside = (r >= 0) & (r < grid.height) & (c >= 0) & (c < grid.width)
            np.add.at(out, (r[inside], c[inside]), values[inside])
    return out


@pytest.mark.parametrize("lattice", ["fitted", "coarse", "none"])
def test_splat_counts_equals_transforming_every_subpixel(
    lattice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 200 x 200 pixels of 3 arc-seconds, 2 degrees east of UTM 47N's central meridian, where the
    # projection bends most; some nodata and empty pixels.
    rng = np.random.default_rng(7)
    people = rng.gamma(0.5, 40.0, size=(200, 200))
    people[rng.random(people.shape) < 0.1] = 0.0
    people[rng.random(people.shape) < 0.05] = np.nan
    transform = from_origin(100.9, 19.6, 1 / 1200, 1 / 1200)
    whole = grid_for_bounds((100.89, 19.42, 101.08, 19.61), 100.0, "EPSG:32647")
    # A grid whose edges cut through the raster, so pixels leave it on all four sides.
    part = GridSpec("EPSG:32647", whole.west + 2_050.0, whole.north - 3_050.0, 100.0, 120, 130)
    if lattice == "coarse":
        # Interpolation errs by up to ~2/1000 of a cell: thousands of sub-pixels go the exact way.
        monkeypatch.setattr(layers, "_LATTICE_STEP", 64)
        monkeypatch.setattr(layers, "_LATTICE_TOL", 0.05)
        # Chunks of 15 source rows, cutting through the lattice's intervals of 64 rows.
        monkeypatch.setattr(layers, "_CHUNK_PIXELS", 15 * 200)
    elif lattice == "none":  # no lattice is ever good enough: every sub-pixel is transformed
        monkeypatch.setattr(layers, "_LATTICE_TOL", -1.0)
    place = layers._Placer(transform, Transformer.from_crs("EPSG:4326", "EPSG:32647", always_xy=True), whole)
    fitted = layers._fit_lattice(place, 200, 200, budget=4 * 200 * 200)
    if lattice == "none":
        assert fitted is None
    else:
        assert fitted is not None
        assert fitted.step == (64 if lattice == "coarse" else 16)
        assert (fitted.margin > 1e-3) == (lattice == "coarse")
    for grid in (whole, part):
        out = splat_counts(people, transform, "EPSG:4326", grid)
        expected = splat_reference(people, transform, "EPSG:4326", grid, k=2)
        # Same cells, same additions in the same order: equal bit for bit.
        np.testing.assert_array_equal(out, expected)
        # float32 counts (as WorldPop's) are widened before they are split.
        single = people.astype(np.float32)
        out32 = splat_counts(single, transform, "EPSG:4326", grid)
        np.testing.assert_array_equal(
            out32, splat_reference(single.astype(np.float64), transform, "EPSG:4326", grid, k=2)
        )
    assert 0.3 < out.sum() / np.nansum(people) < 0.7  # ``part`` holds about half of them
    whole_out = splat_counts(people, transform, "EPSG:4326", whole)
    assert whole_out.sum() == pytest.approx(np.nansum(people), rel=1e-12)


@pytest.mark.parametrize(("pixel", "k"), [(250.0, 5), (30.0, 1)])
def test_splat_counts_in_the_grid_crs(pixel: float, k: int) -> None:
    grid = GridSpec("EPSG:32647", 500_000.0, 2_160_000.0, 100.0, 40, 30)
    rows, cols = int(3_600 // pixel), int(4_600 // pixel)  # past the grid's east and south edges
    people = np.random.default_rng(5).gamma(0.5, 40.0, size=(rows, cols))
    # The raster starts 10 m east and 20 m south of the grid's corner.
    transform = from_origin(grid.west + 10.0, grid.north - 20.0, pixel, pixel)
    out = splat_counts(people, transform, "EPSG:32647", grid)
    # Sub-pixel centres, in metres from the grid corner, straight from the pixel size: no projection.
    expected = np.zeros(grid.shape)
    r, c = np.indices(people.shape).reshape(2, -1)
    for dy in (np.arange(k) + 0.5) / k:
        for dx in (np.arange(k) + 0.5) / k:
            col = np.floor((10.0 + (c + dx) * pixel) / 100.0).astype(np.int64)
            row = np.floor((20.0 + (r + dy) * pixel) / 100.0).astype(np.int64)
            inside = (row < grid.height) & (col < grid.width)
            np.add.at(expected, (row[inside], col[inside]), people.ravel()[inside] / (k * k))
    np.testing.assert_array_equal(out, expected)
    assert 0 < out.sum() < people.sum()
    # The pixels wholly inside the grid keep their people.
    inner = people[: int(2_980 // pixel), : int(3_990 // pixel)].sum()
    assert out.sum() >= inner * (1 - 1e-12)


def test_utm_zone_choice() -> None:
    assert utm_crs_for(100.1, 20.2) == "EPSG:32647"
    assert utm_crs_for(-43.2, -22.9) == "EPSG:32723"


def test_band_reads_nodata_as_nan_as_the_masked_read_does(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    single = rng.normal(size=(40, 50)).astype(np.float32)
    single[::7] = -99999.0
    single[3, 3] = np.nan
    whole = rng.integers(0, 100, size=(40, 50)).astype(np.int16)
    whole[::5] = -9999
    lowest = -3.4028234663852886e38  # float32's lowest, WorldPop's nodata
    cases = {
        "float32 nodata": (single, -99999.0),
        "float32 NaN nodata": (np.where(single == -99999.0, np.nan, single).astype(np.float32), np.nan),
        "float64 lowest nodata": (np.where(single == -99999.0, lowest, single), lowest),
        "int16 nodata": (whole, -9999),
        "int16 no nodata": (whole, None),
    }
    for name, (values, nodata) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.tif"
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=50,
            height=40,
            count=1,
            dtype=values.dtype,
            crs="EPSG:4326",
            transform=from_origin(85.0, 28.0, 0.01, 0.01),
            nodata=nodata,
        ) as dst:
            dst.write(values, 1)
    # An internal mask band (no nodata value): GDAL's mask is read.
    masked_path = tmp_path / "mask_band.tif"
    with (
        rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True),
        rasterio.open(
            masked_path,
            "w",
            driver="GTiff",
            width=50,
            height=40,
            count=1,
            dtype="float32",
            crs="EPSG:4326",
            transform=from_origin(85.0, 28.0, 0.01, 0.01),
        ) as dst,
    ):
        dst.write(single, 1)
        dst.write_mask(np.where(np.arange(50)[None, :] < 10, 0, 255).repeat(40, axis=0).astype(np.uint8))
    window = rasterio.windows.Window(5, 3, 30, 20)
    nan_counts = []
    for path in sorted(tmp_path.glob("*.tif")):
        with rasterio.open(path) as src:
            flags = set(src.mask_flag_enums[0])
            assert (MaskFlags.per_dataset in flags) == (path == masked_path)
            for win in (None, window):
                expected = src.read(1, window=win, masked=True).astype(np.float64).filled(np.nan)
                got = read_band_nan(src, win)
                assert got.dtype == np.float64
                np.testing.assert_array_equal(got, expected)
                kept = read_band_nan(src, win, widen=False)
                assert kept.dtype == (src.dtypes[0] if src.dtypes[0].startswith("float") else np.float64)
                np.testing.assert_array_equal(kept.astype(np.float64), expected)
            nan_counts.append(int(np.isnan(expected).sum()))
    assert sum(c > 0 for c in nan_counts) == 5  # all but "int16 no nodata" have missing values


def test_raster_without_crs_says_how_to_fix(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "dem.tif", np.ones((5, 5)), None, 0, 5, 1)
    with pytest.raises(CRSError, match="has no CRS") as info:
        raster_bounds_lonlat(path)
    assert "gdal_edit" in info.value.hint


def test_dem_checks(tmp_path: Path) -> None:
    grid = grid_for_bounds((100.0, 20.0, 100.02, 20.02), 100.0)
    feet = write_raster(tmp_path / "feet.tif", np.full((30, 30), 12000.0), "EPSG:4326", 99.99, 20.03, 0.002)
    with pytest.raises(LayerError, match="expected metres"):
        load_dem(feet, grid)
    empty = write_raster(
        tmp_path / "empty.tif", np.full((30, 30), -9999.0), "EPSG:4326", 99.99, 20.03, 0.002, nodata=-9999.0
    )
    with pytest.raises(LayerError, match="nodata everywhere"):
        load_dem(empty, grid)
    far = write_raster(tmp_path / "far.tif", np.full((30, 30), 100.0), "EPSG:4326", 10.0, 50.0, 0.002)
    with pytest.raises(LayerError, match="does not overlap"):
        load_dem(far, grid)
    with pytest.raises(LayerError, match="not found"):
        load_dem(tmp_path / "missing.tif", grid)


def test_zones_fill_defaults_and_reject_percentages(tmp_path: Path) -> None:
    grid = grid_for_bounds((100.0, 20.0, 100.02, 20.02), 100.0)
    zone = Point(100.01, 20.01).buffer(0.004)
    zones = gpd.GeoDataFrame({"collection_rate": [0.9]}, geometry=[zone], crs="EPSG:4326")
    out = rasterize_zones(zones, grid, ZoneDefaults())
    assert out.collection_rate.max() == pytest.approx(0.9)
    assert out.collection_rate.min() == pytest.approx(ZoneDefaults().collection_rate)
    assert np.all(out.plastic_share == ZoneDefaults().plastic_share)
    bad = gpd.GeoDataFrame({"collection_rate": [60.0]}, geometry=[zone], crs="EPSG:4326")
    with pytest.raises(LayerError, match="fraction"):
        rasterize_zones(bad, grid, ZoneDefaults())


def test_vectors_need_a_crs_and_barriers_a_kind(tmp_path: Path) -> None:
    grid = grid_for_bounds((100.0, 20.0, 100.02, 20.02), 100.0)
    path = tmp_path / "b.gpkg"
    gpd.GeoDataFrame({"name": ["x"]}, geometry=[Point(100.01, 20.01)], crs="EPSG:4326").to_file(
        path, layer="b"
    )
    with pytest.raises(LayerError, match="no `kind` column"):
        load_barriers(path, grid, BarrierPass())
    gpd.GeoDataFrame({"kind": ["Dam"]}, geometry=[Point(100.01, 20.01)], crs="EPSG:4326").to_file(
        path, layer="b"
    )
    barriers = load_barriers(path, grid, BarrierPass())
    assert barriers.kind == ["dam"]
    assert barriers.pass_factor.tolist() == [BarrierPass().dam]
    for impossible in (5.0, -1.0):  # a load multiplied by 5, or made negative
        gpd.GeoDataFrame(
            {"kind": ["weir", "dam"], "pass_factor": [0.4, impossible]},
            geometry=[Point(100.01, 20.01), Point(100.011, 20.01)],
            crs="EPSG:4326",
        ).to_file(path, layer="b")
        with pytest.raises(
            LayerError, match=rf"pass_factor must be a fraction in \[0, 1\].*got {impossible:g} in row\(s\) 2"
        ):
            load_barriers(path, grid, BarrierPass())
    nocrs = tmp_path / "lines.shp"
    gpd.GeoDataFrame(geometry=[LineString([(0, 0), (1, 1)])]).to_file(nocrs)
    with pytest.raises(CRSError, match="no CRS"):
        read_vector(nocrs, "rivers")


@pytest.mark.realdata
def test_worldpop_kathmandu_total_is_kept(shared_data: Path) -> None:
    path = shared_data / "kathmandu_worldpop" / "NPL_ppp_v2c_2020_UNadj.tif"
    with rasterio.open(path) as src:
        total = float(src.read(1, masked=True).sum())
    west, south, east, north = raster_bounds_lonlat(path)
    for cell in (100.0, 500.0):
        grid = grid_for_bounds((west - 0.01, south - 0.01, east + 0.01, north + 0.01), cell)
        out = load_population(path, grid)
        print(
            f"Kathmandu 2020 UN-adjusted: source {total:,.0f} people, on a {cell:.0f} m grid {out.sum():,.0f}"
        )
        assert out.sum() == pytest.approx(total, rel=1e-6)
    assert total == pytest.approx(2_196_647, rel=1e-4)


@pytest.mark.realdata
def test_thai_districts_are_clipped_to_the_area(shared_data: Path) -> None:
    from plastic_hotspots.maps.inputs.vectors import load_boundaries

    path = shared_data / "thailand_admin_boundaries" / "th_adm2.geojson"
    units = load_boundaries(path, (99.9, 20.1, 100.2, 20.4))
    assert units.crs.to_epsg() == 4326
    assert "Mueang Chiang Rai" in set(units["name"])
    assert 3 <= len(units) <= 10
    west, south, east, north = units.total_bounds
    assert west >= 99.9 - 1e-9
    assert east <= 100.2 + 1e-9
    assert south >= 20.1 - 1e-9
    assert north <= 20.4 + 1e-9
    with pytest.raises(LayerError, match="no boundary"):
        load_boundaries(path, (10.0, 50.0, 10.1, 50.1))
