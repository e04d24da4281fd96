"""Memory of the hotspot model's large mode on a raster several times larger than a memory limit.

Generates (seeded, window by window) a basin on disk: a DEM GeoTIFF in UTM with valleys, pits,
lakes and flats spanning many tiles, a WorldPop-like lon/lat population raster (people in about a
quarter of it) and service zones. The grid holds ``--factor`` (default 4) times ``--limit-mb`` as
float64 cells. Then, in a fresh subprocess:

1. import everything the run needs, read the (two-polygon) zones file once (that initialises
   pyogrio and GDAL's vector drivers), write a one-point GeoPackage (that initialises GDAL's
   GeoPackage writer), compile the routing's kernels, and note the process's memory: the baseline.
   The child runs with ``ARROW_DEFAULT_MEMORY_POOL=system`` (pyarrow's default allocator reserves
   about 1 GiB of address space on first use);
2. enforce the limit: ``RLIMIT_AS`` = address space after imports + ``--limit-mb`` (any allocation
   beyond it fails with MemoryError), and reset the peak resident set (``/proc/self/clear_refs``);
3. run :func:`plastic_hotspots.maps.large.run.run_large` on the basin, the function behind
   ``plastic-hotspots hotspots --tile N`` (DEM regridding, tiled routing, population, mismanaged
   plastic, P_land, leakage, stream order, river loads and retention, ranked hotspots, COG outputs
   and the GeoPackage);
4. report the peak resident set above the baseline (``VmHWM - VmRSS`` before the run) and the peak
   address space above the baseline (``VmPeak - VmSize``).

PASS when the run completes under the enforced limit. Usage::

    python benchmarks/hotspot_memory.py --limit-mb 128 --factor 4 --tile 512
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
CRS = "EPSG:32648"
WEST, NORTH = 500_000.0, 1_400_000.0  # UTM 48N, about 105 E 12.7 N (Cambodia, Mekong)
CELL = 100.0
POP_DEG = 1.0 / 1200.0  # 3 arc-seconds, as WorldPop


# --------------------------------------------------------------------------------------------------
# A synthetic basin, window by window (the same values whatever the windows)
# --------------------------------------------------------------------------------------------------


def _hash(i: npt.NDArray[np.int64], j: npt.NDArray[np.int64], seed: int) -> FloatArray:
    """Uniform [0, 1) from integer lattice coordinates (splitmix-style mixing)."""
    with np.errstate(over="ignore"):
        x = (i.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ (
            j.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
        )
        x ^= np.uint64(seed)
        x ^= x >> np.uint64(33)
        x *= np.uint64(0xFF51AFD7ED558CCD)
        x ^= x >> np.uint64(33)
        x *= np.uint64(0xC4CEB9FE1A85EC53)
        x ^= x >> np.uint64(33)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _lattice(r0: int, r1: int, c0: int, c1: int, spacing: float, seed: int) -> FloatArray:
    """Smooth value noise: random values on a lattice, smoothstep-interpolated."""
    rr = np.arange(r0, r1, dtype=np.float64)[:, None] / spacing
    cc = np.arange(c0, c1, dtype=np.float64)[None, :] / spacing
    i0, j0 = np.floor(rr).astype(np.int64), np.floor(cc).astype(np.int64)
    fr, fc = rr - i0, cc - j0
    fr, fc = fr * fr * (3 - 2 * fr), fc * fc * (3 - 2 * fc)
    i0, j0 = i0 + 1_000_000, j0 + 1_000_000
    return (
        _hash(i0, j0, seed) * (1 - fr) * (1 - fc)
        + _hash(i0 + 1, j0, seed) * fr * (1 - fc)
        + _hash(i0, j0 + 1, seed) * (1 - fr) * fc
        + _hash(i0 + 1, j0 + 1, seed) * fr * fc
    )


def synthetic_dem(r0: int, r1: int, c0: int, c1: int, seed: int = 7) -> FloatArray:
    """Elevations (m): a regional slope, hills at three scales, cell noise; rounded to 0.1 m (flats)."""
    rows = np.arange(r0, r1, dtype=np.int64)[:, None] + np.zeros((1, c1 - c0), dtype=np.int64)
    cols = np.arange(c0, c1, dtype=np.int64)[None, :] + np.zeros((r1 - r0, 1), dtype=np.int64)
    z = 100.0 + 0.02 * rows.astype(np.float64)
    z = z + 40 * _lattice(r0, r1, c0, c1, 256, seed) + 15 * _lattice(r0, r1, c0, c1, 64, seed + 1)
    z = z + 4 * _lattice(r0, r1, c0, c1, 16, seed + 2) + 0.5 * _hash(rows, cols, seed + 3)
    return np.round(z, 1)


def _write_windows(
    path: Path, width: int, height: int, crs: str, transform: object, block: int, fn: object
) -> None:
    import rasterio
    from rasterio.windows import Window

    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "float32",
        "crs": crs,
        "transform": transform,
        "nodata": -9999.0,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "BIGTIFF": "YES",
    }
    with rasterio.Env(GDAL_CACHEMAX=64), rasterio.open(path, "w", **profile) as dst:
        for r0 in range(0, height, block):
            for c0 in range(0, width, block):
                r1, c1 = min(r0 + block, height), min(c0 + block, width)
                values = fn(r0, r1, c0, c1)  # type: ignore[operator]
                dst.write(values.astype(np.float32), 1, window=Window(c0, r0, c1 - c0, r1 - r0))


def generate_basin(folder: Path, side: int) -> Path:
    """Write ``dem.tif`` (side x side, 100 m), ``population.tif``, ``zones.gpkg``, ``basin.yaml``."""
    import geopandas as gpd
    import rasterio
    import yaml
    from pyproj import Transformer
    from rasterio.transform import from_origin
    from shapely.geometry import Point

    folder.mkdir(parents=True, exist_ok=True)
    _write_windows(
        folder / "dem.tif", side, side, CRS, from_origin(WEST, NORTH, CELL, CELL), 1024, synthetic_dem
    )
    to_ll = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    east, south = WEST + side * CELL, NORTH - side * CELL
    lon, lat = to_ll.transform([WEST, east, east, WEST], [NORTH, NORTH, south, south])
    west_ll, north_ll = min(lon), max(lat)
    pw = math.ceil((max(lon) - west_ll) / POP_DEG)
    ph = math.ceil((north_ll - min(lat)) / POP_DEG)

    def people(r0: int, r1: int, c0: int, c1: int) -> FloatArray:
        towns = _lattice(r0, r1, c0, c1, 300, 11)
        density = np.where(towns > 0.72, 40.0 * (towns - 0.72) / 0.28 + 0.5, 0.0)  # people per pixel
        return density * _lattice(r0, r1, c0, c1, 20, 12)

    with rasterio.Env():
        _write_windows(
            folder / "population.tif",
            pw,
            ph,
            "EPSG:4326",
            from_origin(west_ll, north_ll, POP_DEG, POP_DEG),
            2048,
            people,
        )
    centre = Point(WEST + side * CELL / 2, NORTH - side * CELL / 2)
    zones = gpd.GeoDataFrame(
        {
            "name": ["served town", "riverside settlement"],
            "generation_kg_per_cap_day": [0.9, 0.55],
            "plastic_share": [0.13, 0.12],
            "collection_rate": [0.85, 0.05],
        },
        geometry=[
            centre.buffer(side * CELL / 6),
            Point(WEST + side * CELL / 5, NORTH - side * CELL / 5).buffer(side * CELL / 10),
        ],
        crs=CRS,
    ).to_crs("EPSG:4326")
    zones.to_file(folder / "zones.gpkg", driver="GPKG", engine="pyogrio")
    config = {
        "name": f"Synthetic basin {side} x {side}",
        "cell_size_m": CELL,
        "crs": CRS,
        "layers": {"dem": "dem.tif", "population": "population.tif", "zones": "zones.gpkg"},
    }
    path = folder / "basin.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------
# The measured run (a subprocess)
# --------------------------------------------------------------------------------------------------


def _status() -> dict[str, int]:
    """VmPeak, VmSize, VmHWM, VmRSS of this process in bytes."""
    out: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmPeak", "VmSize", "VmHWM", "VmRSS"):
                out[key] = int(value.split()[0]) * 1024
    return out


def child(config_path: Path, out_dir: Path, limit: int, tile: int, cog: bool) -> None:
    """Run the large mode under the limit and print one JSON line of figures."""
    from plastic_hotspots.maps.config import load_config
    from plastic_hotspots.maps.inputs.vectors import read_vector
    from plastic_hotspots.maps.large.run import run_large
    from plastic_hotspots.maps.science.basin import basin_grid

    config = load_config(config_path)
    grid = basin_grid(config)
    if config.zones is not None:
        # The first vector read initialises pyogrio and GDAL's vector drivers (about 40 MiB resident):
        # library start-up, like an import, so it is part of the baseline.
        read_vector(config.zones, "zones")
    # The first GeoPackage write initialises GDAL's writer (about 80 MiB of address space): start-up.
    with tempfile.TemporaryDirectory() as scratch:
        import geopandas as gpd
        from shapely.geometry import Point

        point = gpd.GeoDataFrame({"n": [1]}, geometry=[Point(0.0, 0.0)], crs="EPSG:4326")
        point.to_file(Path(scratch) / "start.gpkg", layer="start", driver="GPKG", engine="pyogrio")
    try:  # compiling (or loading) the routing's numba kernels is start-up too
        from plastic_hotspots.maps.kernels.compiled import warm_up
    except ImportError:  # kernels not compiled in this version
        pass
    else:
        warm_up()
    before = _status()
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (before["VmSize"] + limit, hard))
    with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
        handle.write("5")  # reset VmHWM: the peak from here on
    before = _status()
    start = time.perf_counter()
    error = None
    totals: dict[str, float] = {}
    try:
        result = run_large(config, out_dir, tile=tile, work_dir=out_dir / ".work", cog=cog)
        totals = result.totals
        counts = {
            "tiles": result.counts.tiles,
            "fill_solves": result.counts.fill_solves,
            "flat_solves": result.counts.flat_solves,
            "hotspots": len(result.hotspots),
        }
    except MemoryError as exc:
        error = f"MemoryError: {exc}"
        counts = {}
    elapsed = time.perf_counter() - start
    after = _status()
    print(
        json.dumps(
            {
                "rows": grid.height,
                "cols": grid.width,
                "baseline_rss": before["VmRSS"],
                "peak_rss_growth": after["VmHWM"] - before["VmRSS"],
                "peak_vm_growth": after["VmPeak"] - before["VmSize"],
                "seconds": elapsed,
                "error": error,
                "totals": totals,
                "counts": counts,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit-mb", type=float, default=128.0, help="memory limit on the run's own data")
    parser.add_argument("--factor", type=float, default=4.0, help="raster size (float64) / limit")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to generate the basin (default: a temp dir)"
    )
    parser.add_argument("--no-cog", action="store_true", help="write plain tiled GeoTIFFs")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    limit = int(args.limit_mb * 2**20)
    if args.child:
        child(args.child[0], args.child[1], limit, args.tile, not args.no_cog)
        return
    side = math.ceil(math.sqrt(args.factor * limit / 8))
    with tempfile.TemporaryDirectory(prefix="hotspot-memory-") as tmp:
        folder = args.dir or Path(tmp)
        start = time.perf_counter()
        config = folder / "basin.yaml"
        marker = folder / f".side-{side}"
        if not marker.exists():
            config = generate_basin(folder, side)
            marker.touch()
        generated = time.perf_counter() - start
        cmd = [
            sys.executable,
            __file__,
            "--child",
            str(config),
            str(folder / "out"),
            "--limit-mb",
            str(args.limit_mb),
            "--tile",
            str(args.tile),
        ]
        if args.no_cog:
            cmd.append("--no-cog")
        # pyarrow's default allocator reserves about 1 GiB of address space on first use (pyogrio
        # reads vectors through Arrow); the system allocator does not.
        env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "system"}
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            print(proc.stdout[-3000:], proc.stderr[-3000:])
            print(f"MISS: the run failed (exit code {proc.returncode})")
            sys.exit(1)
        figures = json.loads(lines[-1])
    cells = figures["rows"] * figures["cols"]
    mib = 2**20
    raster_mb = cells * 8 / mib
    ok = figures["error"] is None and figures["peak_rss_growth"] <= limit
    print(f"grid: {figures['rows']} x {figures['cols']} cells ({cells / 1e6:.1f} M), tile {args.tile}")
    print(f"raster (float64): {raster_mb:,.0f} MiB = {raster_mb / args.limit_mb:.2f} x the limit")
    print(f"limit (RLIMIT_AS above the imported interpreter): {args.limit_mb:,.0f} MiB")
    print(f"baseline RSS after imports: {figures['baseline_rss'] / mib:,.0f} MiB")
    print(f"peak RSS above baseline: {figures['peak_rss_growth'] / mib:,.1f} MiB")
    print(f"peak address space above baseline: {figures['peak_vm_growth'] / mib:,.1f} MiB")
    per_cell = figures["seconds"] / cells * 1e6
    seconds = figures["seconds"]
    print(f"generation: {generated:,.0f} s; large mode: {seconds:,.0f} s ({per_cell:.2f} us per cell)")
    print(f"tiles: {figures['counts']}")
    print(f"totals: {figures['totals']}")
    if figures["error"]:
        print(figures["error"])
    print("PASS" if ok else "MISS")


if __name__ == "__main__":
    main()
