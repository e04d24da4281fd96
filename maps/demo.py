"""The demo basin: a small river basin generated deterministically, with its planted truth.

``plastic-hotspots demo --out DIR`` writes, under ``DIR/inputs``, everything a real basin study would
start from, in the formats users bring:

* ``dem.tif``: a DEM (UTM, 100 m) carved by a river network with a main stem and three tributaries;
* ``population.tif``: people per pixel on a WorldPop-like lon/lat raster (3 arc-seconds);
* ``zones.gpkg``: waste-collection service zones with generation rate, plastic share, collection rate;
* ``rivers.gpkg``: the mapped river network; ``barriers.gpkg``: a dam, a weir, a port and bridges;
* ``observations.parquet``: a survey (drives along roads, walks along riverbanks), one row per image
  with the litter items seen in it, drawn from a known ("planted") litter field;
* ``basin.yaml``: the basin config that names them.

``DIR/truth`` holds the planted truth: the leakage sources and accumulation points the model should
find (``truth.gpkg``, ``truth.json``) and the planted litter field (``planted_litter_rate.tif``).

The demo then runs the real pipeline (``hotspots`` + ``map``) on these inputs.

``plastic-hotspots demo --basin maha-oya`` runs the same pipeline on a real basin instead: a compact
extract of the Maha Oya, Sri Lanka, shipped inside the package (``plastic_hotspots.maps.examples``,
with its sources and licences in ``ATTRIBUTION.md``), copied to ``DIR/inputs``. It has no planted truth.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import rasterio
import yaml
from pyproj import Transformer
from rasterio.transform import Affine, from_origin
from scipy import ndimage
from shapely.geometry import LineString, Point
from shapely.geometry import box as shapely_box

from plastic_hotspots.errors import ConfigError
from plastic_hotspots.geoio import atomic_path
from plastic_hotspots.records import GridSpec

FloatArray = npt.NDArray[np.float64]

SEED = 20240601
CRS = "EPSG:32647"  # UTM 47N: northern Thailand, on the Mekong
CENTRE_LONLAT = (100.10, 20.25)
SIZE = 200  # cells per side
CELL = 100.0  # metres
POP_PIXEL_DEG = 1.0 / 1200.0  # 3 arc-seconds, as WorldPop
ITEMS_PER_KG_YR = 0.004  # planted: items per image per kg/yr of mismanaged plastic in the cell
BACKGROUND_ITEMS = 0.05  # planted: items per image seen anywhere
CLASSES = ("bottle", "bag_film", "wrapper", "cup", "foam", "can", "pile")
CLASS_MIX = np.array([0.28, 0.25, 0.22, 0.09, 0.06, 0.09, 0.01])
DUMP_MIX = np.array([0.15, 0.30, 0.20, 0.05, 0.10, 0.05, 0.15])

# River network in (row, col) cell coordinates, upstream to downstream; tributaries end where they join.
MAIN_STEM = [(0, 70), (30, 80), (60, 75), (90, 95), (120, 100), (150, 108), (175, 105), (199.5, 100)]
TRIBUTARIES = {
    "West Creek": [(40, 5), (60, 25), (80, 50), (100, 78), (112, 98)],
    "East River": [(15, 192), (60, 172), (100, 150), (140, 126), (160, 108)],
    "South Brook": [(150, 15), (165, 48), (180, 80), (186, 103)],
}


@dataclass(frozen=True, slots=True)
class Town:
    """A settlement: a Gaussian population blob and its waste-collection service zone."""

    name: str
    row: float
    col: float
    people: float
    sigma_cells: float
    zone_radius_m: float
    generation_kg_per_cap_day: float
    plastic_share: float
    collection_rate: float


TOWNS = (
    Town("Riverton", 142, 120, 40000, 12, 3000, 0.9, 0.13, 0.85),
    Town("Eastford riverside", 100, 153, 6000, 3, 1000, 0.55, 0.12, 0.05),
    Town("Hilltown", 60, 28, 4000, 3, 1000, 0.5, 0.12, 0.10),
    Town("Lowbridge", 188, 115, 5000, 4, 1200, 0.6, 0.12, 0.6),
)
RURAL_PEOPLE_PER_KM2 = 30.0
RURAL = (0.69, 0.12, 0.2)  # generation, plastic share, collection where no zone: the model's defaults

ROADS = {
    "road-hilltown-riverton": [(60, 28), (72, 45), (84, 62), (100, 88), (118, 106), (142, 120)],
    "road-riverton-eastford": [(142, 120), (122, 140), (100, 153)],
    "road-riverton-lowbridge": [(142, 120), (165, 118), (188, 115)],
    "road-north": [(142, 120), (110, 107), (75, 88), (40, 83), (5, 78)],
}
# Illegal dumps: on a road, near a river; planted leakage sources the model can only see in the survey.
DUMPS = {
    "Roadside dump": ("road-north", 0.62, 6000.0),
    "Creek bridge dump": ("road-hilltown-riverton", 0.38, 6000.0),
}
BARRIERS = [
    ("Upper dam", "dam", "main", 122),
    ("Riverton port", "port", "main", 146),
    ("Low weir", "weir", "main", 176),
]


def _path_cells(points: Sequence[tuple[float, float]]) -> list[tuple[int, int]]:
    """Cells visited by a polyline, in order, without repeats."""
    cells: list[tuple[int, int]] = []
    for (r0, c0), (r1, c1) in itertools.pairwise(points):
        n = int(max(abs(r1 - r0), abs(c1 - c0)) * 4) + 1
        for t in np.linspace(0.0, 1.0, n):
            cell = (min(int(r0 + t * (r1 - r0)), SIZE - 1), min(int(c0 + t * (c1 - c0)), SIZE - 1))
            if not cells or cells[-1] != cell:
                cells.append(cell)
    return cells


def _along(points: Sequence[tuple[float, float]], fraction: float) -> tuple[float, float]:
    """The point at ``fraction`` of a polyline's length."""
    line = LineString([(c, r) for r, c in points])
    p = line.interpolate(fraction, normalized=True)
    return float(p.y), float(p.x)


def demo_grid() -> GridSpec:
    """The demo's UTM grid."""
    x, y = Transformer.from_crs("EPSG:4326", CRS, always_xy=True).transform(*CENTRE_LONLAT)
    west = round((x - SIZE * CELL / 2) / CELL) * CELL
    north = round((y + SIZE * CELL / 2) / CELL) * CELL
    return GridSpec(crs=CRS, west=west, north=north, cell_size=CELL, width=SIZE, height=SIZE)


def _rc_to_xy(grid: GridSpec, rows: FloatArray, cols: FloatArray) -> tuple[FloatArray, FloatArray]:
    return grid.west + (cols + 0.5) * grid.cell_size, grid.north - (rows + 0.5) * grid.cell_size


def make_dem(rng: np.random.Generator) -> tuple[FloatArray, dict[str, list[tuple[int, int]]]]:
    """A DEM whose valleys follow the planted river network; returns it and the river cells."""
    river_z = np.full((SIZE, SIZE), np.nan)
    main = _path_cells(MAIN_STEM)
    networks = {"Main river": main}
    # Main stem: 0.6 m per cell upstream of the outlet, a nearly flat reach through Riverton.
    z = 120.0
    for k, (r, c) in enumerate(reversed(main)):
        if k:
            z += 0.08 if 135 <= r <= 160 else 0.6
        river_z[r, c] = z
    for name, points in TRIBUTARIES.items():
        cells = _path_cells(points)
        join = next((i for i, cell in enumerate(cells) if np.isfinite(river_z[cell])), len(cells) - 1)
        cells = cells[: join + 1]
        networks[name] = cells
        z = float(river_z[cells[-1]]) if np.isfinite(river_z[cells[-1]]) else 140.0
        for r, c in reversed(cells[:-1]):
            z += 1.4
            river_z[r, c] = z
    is_river = np.isfinite(river_z)
    dist, (ir, ic) = ndimage.distance_transform_edt(~is_river, return_indices=True)
    noise = ndimage.gaussian_filter(rng.normal(size=(SIZE, SIZE)), 4.0)
    noise *= 4.0 / float(noise.std())
    dem = river_z[ir, ic] + 9.0 * np.power(dist, 0.9) + np.where(is_river, 0.0, noise)
    return dem.astype(np.float64), networks


def _people_density(grid: GridSpec, x: FloatArray, y: FloatArray) -> FloatArray:
    """Planted people per km2 at points in the grid CRS."""
    density = np.full(x.shape, RURAL_PEOPLE_PER_KM2)
    for town in TOWNS:
        tx, ty = _rc_to_xy(grid, np.array(town.row), np.array(town.col))
        s = town.sigma_cells * grid.cell_size
        peak = town.people / (2 * np.pi * s * s) * 1e6
        density = density + peak * np.exp(-((x - tx) ** 2 + (y - ty) ** 2) / (2 * s * s))
    return density


def _zone_values(grid: GridSpec, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    gen = np.full(x.shape, RURAL[0])
    share = np.full(x.shape, RURAL[1])
    coll = np.full(x.shape, RURAL[2])
    for town in TOWNS:
        tx, ty = _rc_to_xy(grid, np.array(town.row), np.array(town.col))
        inside = (x - tx) ** 2 + (y - ty) ** 2 <= town.zone_radius_m**2
        gen = np.where(inside, town.generation_kg_per_cap_day, gen)
        share = np.where(inside, town.plastic_share, share)
        coll = np.where(inside, town.collection_rate, coll)
    return gen, share, coll


def _write_tif(
    path: Path, values: FloatArray, crs: str, transform: Affine, nodata: float | None = None
) -> None:
    with (
        atomic_path(path) as tmp,
        rasterio.open(
            tmp,
            "w",
            driver="GTiff",
            width=values.shape[1],
            height=values.shape[0],
            count=1,
            dtype="float32",
            crs=crs,
            transform=transform,
            nodata=nodata,
            compress="deflate",
        ) as dst,
    ):
        dst.write(values.astype(np.float32), 1)


def generate_demo_basin(out_dir: Path, seed: int = SEED) -> Path:
    """Write the demo basin's inputs and planted truth under ``out_dir``; return the basin config path."""
    rng = np.random.default_rng(seed)
    grid = demo_grid()
    inputs = out_dir / "inputs"
    truth_dir = out_dir / "truth"
    inputs.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    to_ll = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)

    dem, networks = make_dem(rng)
    _write_tif(inputs / "dem.tif", dem, CRS, Affine(*grid.transform), nodata=-9999.0)
    _write_population(inputs / "population.tif", grid, to_ll)
    _write_vector(inputs / "zones.gpkg", _zones(grid))
    _write_vector(inputs / "rivers.gpkg", _rivers(grid, networks))
    _write_vector(inputs / "barriers.gpkg", _barriers(grid, networks))
    _write_vector(inputs / "districts.gpkg", _districts(grid))
    mismanaged, rate, dump_rate, dump_points = _planted_litter(grid)
    _write_tif(truth_dir / "planted_litter_rate.tif", rate + dump_rate, CRS, Affine(*grid.transform))
    observations = _survey(rng, grid, rate, dump_rate, networks)
    observations.to_parquet(inputs / "observations.parquet", index=False)
    _write_truth(truth_dir, grid, to_ll, mismanaged, dump_points)
    return _write_config(inputs / "basin.yaml", grid, to_ll, networks["Main river"][-1])


def _write_population(path: Path, grid: GridSpec, to_ll: Transformer) -> None:
    """Population on a WorldPop-like lon/lat raster, people per pixel."""
    w, s, e, n = _lonlat_bounds(grid, to_ll)
    pw, ph = int(np.ceil((e - w) / POP_PIXEL_DEG)), int(np.ceil((n - s) / POP_PIXEL_DEG))
    pop_transform = from_origin(w, n, POP_PIXEL_DEG, POP_PIXEL_DEG)
    lon_c = w + (np.arange(pw) + 0.5) * POP_PIXEL_DEG
    lat_c = n - (np.arange(ph) + 0.5) * POP_PIXEL_DEG
    lon2, lat2 = np.meshgrid(lon_c, lat_c)
    px, py = Transformer.from_crs("EPSG:4326", CRS, always_xy=True).transform(lon2, lat2)
    pixel_km2 = (POP_PIXEL_DEG * 111.32 * np.cos(np.radians(lat2))) * (POP_PIXEL_DEG * 110.57)
    people = _people_density(grid, np.asarray(px), np.asarray(py)) * pixel_km2
    _write_tif(path, people, "EPSG:4326", pop_transform, nodata=-99999.0)


def _zones(grid: GridSpec) -> gpd.GeoDataFrame:
    """The towns' service zones (EPSG:4326) with their waste figures."""
    zone_rows = []
    for town in TOWNS:
        tx, ty = _rc_to_xy(grid, np.array(town.row), np.array(town.col))
        zone_rows.append(
            {
                "name": town.name,
                "generation_kg_per_cap_day": town.generation_kg_per_cap_day,
                "plastic_share": town.plastic_share,
                "collection_rate": town.collection_rate,
                "geometry": Point(float(tx), float(ty)).buffer(town.zone_radius_m, 32),
            }
        )
    return gpd.GeoDataFrame(zone_rows, geometry="geometry", crs=CRS).to_crs("EPSG:4326")


def _rivers(grid: GridSpec, networks: dict[str, list[tuple[int, int]]]) -> gpd.GeoDataFrame:
    """The mapped rivers (EPSG:4326), one line each."""
    river_rows = []
    for name, cells in networks.items():
        rr = np.array([c[0] for c in cells], dtype=np.float64)
        cc = np.array([c[1] for c in cells], dtype=np.float64)
        x, y = _rc_to_xy(grid, rr, cc)
        river_rows.append({"name": name, "geometry": LineString(zip(x, y, strict=True))})
    return gpd.GeoDataFrame(river_rows, geometry="geometry", crs=CRS).to_crs("EPSG:4326")


def _barriers(grid: GridSpec, networks: dict[str, list[tuple[int, int]]]) -> gpd.GeoDataFrame:
    """The dams, weirs and locks on the main river, and a bridge where each road crosses a river."""
    main = networks["Main river"]
    barrier_rows = []
    for name, kind, _, row in BARRIERS:
        r, c = next(cell for cell in main if cell[0] == row)
        x, y = _rc_to_xy(grid, np.array(float(r)), np.array(float(c)))
        barrier_rows.append({"name": name, "kind": kind, "geometry": Point(float(x), float(y))})
    river_cells = {cell for cells in networks.values() for cell in cells}
    for road, points in ROADS.items():
        previous = False
        for r, c in _path_cells(points):
            on_river = (r, c) in river_cells
            if on_river and not previous:
                x, y = _rc_to_xy(grid, np.array(float(r)), np.array(float(c)))
                barrier_rows.append(
                    {"name": f"Bridge on {road}", "kind": "bridge", "geometry": Point(float(x), float(y))}
                )
            previous = on_river
    return gpd.GeoDataFrame(barrier_rows, geometry="geometry", crs=CRS).to_crs("EPSG:4326")


def _districts(grid: GridSpec) -> gpd.GeoDataFrame:
    """Three districts (administrative boundaries), a little larger than the grid."""
    west, south, east, north = grid.bounds
    pad = 2000.0
    mid_x, mid_y = west + 90 * CELL, north - 110 * CELL
    return gpd.GeoDataFrame(
        {"name": ["Doi Upper district", "Riverton district", "Eastford district"]},
        geometry=[
            shapely_box(west - pad, south - pad, mid_x, north + pad),
            shapely_box(mid_x, south - pad, east + pad, mid_y),
            shapely_box(mid_x, mid_y, east + pad, north + pad),
        ],
        crs=CRS,
    ).to_crs("EPSG:4326")


def _planted_litter(
    grid: GridSpec,
) -> tuple[FloatArray, FloatArray, FloatArray, dict[str, tuple[float, float, float]]]:
    """The planted truth on the grid: mismanaged plastic, litter rates (items per image), the dumps."""
    gx, gy = _rc_to_xy(
        grid, *np.meshgrid(np.arange(SIZE, dtype=float), np.arange(SIZE, dtype=float), indexing="ij")
    )
    gen, share, coll = _zone_values(grid, gx, gy)
    mismanaged = _people_density(grid, gx, gy) * grid.cell_area_m2 / 1e6 * gen * 365.25 * share * (1 - coll)
    dump_field = np.zeros((SIZE, SIZE))
    dump_points: dict[str, tuple[float, float, float]] = {}
    for name, (road, fraction, kg) in DUMPS.items():
        dr, dc = _along(ROADS[road], fraction)
        dump_points[name] = (dr, dc, kg)
        dump_field[int(dr), int(dc)] += kg
    rate = BACKGROUND_ITEMS + ITEMS_PER_KG_YR * mismanaged
    dump_rate = ITEMS_PER_KG_YR * dump_field
    return mismanaged, rate, dump_rate, dump_points


def _write_config(path: Path, grid: GridSpec, to_ll: Transformer, outlet: tuple[int, int]) -> Path:
    """The demo's basin config, its outlet at the main river's last cell."""
    outlet_x, outlet_y = _rc_to_xy(grid, np.array(float(outlet[0])), np.array(float(outlet[1])))
    olon, olat = to_ll.transform(float(outlet_x), float(outlet_y))
    config = {
        "name": "Demo basin (generated)",
        "cell_size_m": CELL,
        "crs": CRS,
        "area_of_interest": [round(v, 6) for v in _lonlat_bounds(grid, to_ll, inset=0.2)],
        "outlet": [round(olon, 6), round(olat, 6)],
        "layers": {
            "dem": "dem.tif",
            "population": "population.tif",
            "zones": "zones.gpkg",
            "rivers": "rivers.gpkg",
            "barriers": "barriers.gpkg",
            "observations": "observations.parquet",
            "boundaries": "districts.gpkg",
        },
    }
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _lonlat_bounds(
    grid: GridSpec, to_ll: Transformer, inset: float = 0.0
) -> tuple[float, float, float, float]:
    """Lon/lat box of the grid (``inset`` cells inside its edges)."""
    west, south, east, north = grid.bounds
    d = inset * grid.cell_size
    xs = np.array([west + d, east - d, east - d, west + d])
    ys = np.array([south + d, south + d, north - d, north - d])
    lon, lat = to_ll.transform(xs, ys)
    if inset:
        return (
            float(np.max(lon[[0, 3]])),
            float(np.max(lat[[0, 1]])),
            float(np.min(lon[[1, 2]])),
            float(np.min(lat[[2, 3]])),
        )
    return float(np.min(lon)), float(np.min(lat)), float(np.max(lon)), float(np.max(lat))


def _write_vector(path: Path, frame: gpd.GeoDataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_file(tmp, layer=path.stem, driver="GPKG", engine="pyogrio")


def _survey(
    rng: np.random.Generator,
    grid: GridSpec,
    rate: FloatArray,
    dump_rate: FloatArray,
    networks: dict[str, list[tuple[int, int]]],
) -> gpd.GeoDataFrame:
    """Images every 20 m along the roads and every 10 m along riverbank walks near the towns."""
    tracks: dict[str, tuple[list[tuple[float, float]], float]] = {
        name: ([(float(r), float(c)) for r, c in pts], 20.0) for name, pts in ROADS.items()
    }
    main = networks["Main river"]
    east = networks["East River"]
    tracks["walk-riverton-bank"] = ([(r, c + 1.5) for r, c in main if 128 <= r <= 160], 10.0)
    tracks["walk-eastford-bank"] = ([(r + 1.0, c) for r, c in east if 92 <= r <= 110], 10.0)
    start = datetime(2026, 3, 14, 8, 0, tzinfo=UTC)
    rows = []
    for t, (name, (points, spacing)) in enumerate(tracks.items()):
        line = LineString([(c, r) for r, c in points])
        length_m = line.length * grid.cell_size
        n = max(2, int(length_m / spacing))
        for k in range(n):
            p = line.interpolate(k / (n - 1), normalized=True)
            r = float(np.clip(p.y + rng.normal(0, 0.04), 0, SIZE - 1e-6))
            c = float(np.clip(p.x + rng.normal(0, 0.04), 0, SIZE - 1e-6))
            base, dump = rate[int(r), int(c)], dump_rate[int(r), int(c)]
            n_base, n_dump = rng.poisson(base), rng.poisson(dump)
            counts = rng.multinomial(n_base, CLASS_MIX) + rng.multinomial(n_dump, DUMP_MIX)
            x, y = _rc_to_xy(grid, np.array(r - 0.5), np.array(c - 0.5))
            rows.append(
                {
                    "image": f"{name}/img_{k:05d}.jpg",
                    "track": name,
                    "captured_at": (start + timedelta(days=t, seconds=3 * k)).isoformat(),
                    "items": int(counts.sum()),
                    **{f"n_{cls}": int(v) for cls, v in zip(CLASSES, counts, strict=True)},
                    "x": float(x),
                    "y": float(y),
                }
            )
    table = pd.DataFrame(rows)
    points = gpd.points_from_xy(table.pop("x"), table.pop("y"))
    return gpd.GeoDataFrame(table, geometry=points, crs=CRS).to_crs("EPSG:4326")


def _write_truth(
    truth_dir: Path,
    grid: GridSpec,
    to_ll: Transformer,
    mismanaged: FloatArray,
    dump_points: Mapping[str, tuple[float, float, float]],
) -> None:
    """The planted leakage sources (towns with poor collection on a river, dumps) and accumulation points."""
    leak = []
    for town in TOWNS:
        if town.collection_rate < 0.5:
            r0, r1 = int(town.row - 2 * town.sigma_cells), int(town.row + 2 * town.sigma_cells) + 1
            c0, c1 = int(town.col - 2 * town.sigma_cells), int(town.col + 2 * town.sigma_cells) + 1
            kg = float(mismanaged[max(r0, 0) : r1, max(c0, 0) : c1].sum())
            leak.append((town.name, "poorly served settlement", town.row, town.col, kg))
    for name, (r, c, kg) in dump_points.items():
        leak.append((name, "illegal dump", r, c, kg))
    accumulation = [(name, kind, float(row)) for name, kind, _, row in BARRIERS if kind in ("dam", "weir")]
    records: dict[str, list[dict[str, object]]] = {"leakage": [], "accumulation": []}
    for name, kind, r, c, kg in leak:
        x, y = _rc_to_xy(grid, np.array(r), np.array(c))
        lon, lat = to_ll.transform(float(x), float(y))
        records["leakage"].append({"name": name, "kind": kind, "lon": lon, "lat": lat, "kg_yr": round(kg, 1)})
    for name, kind, row in accumulation:
        main = _path_cells(MAIN_STEM)
        r, c = next(cell for cell in main if cell[0] == int(row))
        x, y = _rc_to_xy(grid, np.array(float(r)), np.array(float(c)))
        lon, lat = to_ll.transform(float(x), float(y))
        records["accumulation"].append({"name": name, "kind": kind, "lon": lon, "lat": lat})
    with atomic_path(truth_dir / "truth.json") as tmp:
        tmp.write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    with atomic_path(truth_dir / "truth.gpkg") as tmp:
        for layer, items in records.items():
            frame = gpd.GeoDataFrame(
                [{k: v for k, v in item.items() if k not in ("lon", "lat")} for item in items],
                geometry=[Point(float(str(i["lon"])), float(str(i["lat"]))) for i in items],
                crs="EPSG:4326",
            )
            frame.to_file(tmp, layer=f"planted_{layer}", driver="GPKG", engine="pyogrio")


GENERATED = "generated"
EXAMPLE_BASINS = {"maha-oya": ("maha_oya", "Maha Oya, Sri Lanka")}
"""Real example basins shipped in ``plastic_hotspots.maps.examples``: CLI name -> (folder, title)."""
BASINS = (GENERATED, *EXAMPLE_BASINS)


def copy_example_basin(name: str, out_dir: Path) -> Path:
    """Copy a packaged example basin (data, config, attribution) to ``out_dir``; return its config path.

    Args:
        name: One of :data:`EXAMPLE_BASINS` (``maha-oya``).
        out_dir: Directory to copy the files into (created).

    Returns:
        The copied ``basin.yaml``, whose layer paths are relative to it.
    """
    if name not in EXAMPLE_BASINS:
        raise ConfigError(f"no example basin named {name!r}", hint=f"choose one of {', '.join(BASINS)}")
    folder = resources.files("plastic_hotspots.maps.examples").joinpath(EXAMPLE_BASINS[name][0])
    out_dir.mkdir(parents=True, exist_ok=True)
    for item in folder.iterdir():
        if item.is_file():
            with item.open("rb") as src, atomic_path(out_dir / item.name) as tmp, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst)
    config = out_dir / "basin.yaml"
    if not config.is_file():
        raise ConfigError(
            f"the packaged example basin {name!r} has no basin.yaml",
            hint="reinstall plastic-hotspots (the package data is missing)",
        )
    return config


@dataclass(frozen=True, slots=True)
class DemoOutputs:
    """What the demo wrote (``truth`` only for the generated basin)."""

    config: Path
    hotspots_dir: Path
    map_html: Path
    report_html: Path
    truth: Path | None


def run_demo(out_dir: Path, seed: int = SEED, basin: str = GENERATED) -> DemoOutputs:
    """Generate the demo basin (or copy a packaged real one), run the hotspot model and render its map.

    Args:
        out_dir: Directory to write into (``inputs/``, ``truth/``, ``hotspots/``, ``map.html``,
            ``report.html``).
        seed: Random seed of the generator; the same seed gives the same basin (generated basin only).
        basin: ``generated`` (the default), or the name of a packaged real basin (:data:`EXAMPLE_BASINS`),
            which has no planted truth.

    Returns:
        The paths written.
    """
    from plastic_hotspots.maps.config import load_config
    from plastic_hotspots.maps.render.report import render_report
    from plastic_hotspots.maps.render.webmap import render_map
    from plastic_hotspots.maps.wholegrid.run import run_hotspots

    if basin == GENERATED:
        config_path = generate_demo_basin(out_dir, seed)
        title, truth = "Demo basin", out_dir / "truth" / "truth.gpkg"
    else:
        config_path = copy_example_basin(basin, out_dir / "inputs")
        title, truth = EXAMPLE_BASINS[basin][1], None
    hotspots_dir = out_dir / "hotspots"
    run_hotspots(load_config(config_path), hotspots_dir)
    html = render_map(hotspots_dir, out_dir / "map.html", title=f"{title}: plastic hotspots")
    report = render_report(hotspots_dir, out_dir / "report.html", title=f"{title}: plastic hotspots report")
    return DemoOutputs(
        config=config_path, hotspots_dir=hotspots_dir, map_html=html, report_html=report, truth=truth
    )
