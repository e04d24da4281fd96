"""Speed of the whole hotspot model against pysheds conditioning a DEM and routing D8, in one run.

A seeded synthetic basin of N x N cells of 100 m in a UTM zone (EPSG:32647, northern Thailand), in the
formats users bring:

* ``dem.tif``: a steady-state fluvial landscape: a dendritic river network grown on a coarse grid,
  stream-power long profiles (plains and mountains), 10 m of fractal detail, closed sinks and 1 m of
  sensor noise, rounded to whole metres as SRTM is. 13-16 % of its cells lie in pits, depressions
  and flats that filling raises, so depression filling and flat routing both matter;
* ``population.tif``: people per pixel on a WorldPop-like lon/lat raster of 3 arc-seconds (rural
  people nearly everywhere, none in about a third of the area, towns as Gaussian blobs);
* ``zones.gpkg`` (a service zone per town), ``barriers.gpkg`` (dams, weirs, bridges on valley floors),
  ``observations.parquet`` (survey drives, one row per image), ``basin.yaml`` (no outlet: the whole DEM).

Timed, each in a fresh subprocess so that peak memory (VmHWM) is each one's own:

* baseline: pysheds 0.5 reading the DEM and conditioning it as its README does (``fill_pits``,
  ``fill_depressions``, ``resolve_flats``), then ``flowdir`` (D8) and ``accumulation``. Numba
  compilation is warmed up on a 64 x 64 DEM in the same process before the clock starts;
* ours: ``run_hotspots(load_config(basin.yaml), out)`` end to end: every layer read and resampled,
  conditioning and routing, the model, and all outputs written (8 COGs, the GeoPackage).

Goals: ours / pysheds <= 1.5 at ``--size``; with ``--scale-to M``, ours at M x M over ours at N x N
under 1.125 x the ratio of cell counts (4.5 for 8000 vs 4000). Rounds alternate the two and medians
are compared. Peak memory is each process's VmHWM (sampled from outside as well, so that a run that
fails still says how far it got); ``--memory-limit`` caps each timed process's address space so that
a run too big for the machine fails with MemoryError instead of waking the out-of-memory killer.
Inputs are generated once per size and seed under ``--work`` and reused.

    python benchmarks/hotspot_speed.py --size 4000 --scale-to 8000 --rounds 2 --memory-limit 20 \
        --work /tmp/hotspot-bench
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

CRS = "EPSG:32647"  # UTM 47N
CENTRE_LONLAT = (99.0, 19.5)  # on the zone's central meridian
CELL = 100.0
POP_PIXEL_DEG = 1.0 / 1200.0  # 3 arc-seconds, as WorldPop
NODATA = -9999.0
COARSE = 8  # cells per side of the coarse grid the river network is grown on
GENERATOR_VERSION = 2


# --------------------------------------------------------------------------------------------------
# The synthetic basin
# --------------------------------------------------------------------------------------------------


def _spectral(
    rng: np.random.Generator, n: int, beta: float, low_cells: float, high_cells: float
) -> FloatArray:
    """Periodic noise with amplitude ~ f^-beta between wavelengths ``high_cells`` and ``low_cells``."""
    spec = np.fft.rfft2(rng.standard_normal((n, n), dtype=np.float64))
    fy = np.fft.fftfreq(n).astype(np.float64)[:, None]
    fx = np.fft.rfftfreq(n).astype(np.float64)[None, :]
    f2 = fy * fy + fx * fx
    f0 = 1.0 / low_cells
    amp = np.power(f2 + f0 * f0, -beta / 2.0)
    amp *= np.exp(-f2 * (high_cells * high_cells))  # roll off below high_cells
    spec *= amp
    del amp, f2
    out = np.fft.irfft2(spec, s=(n, n))
    out -= out.mean()
    out /= out.std()
    return np.asarray(out, dtype=np.float64)


def _flood_tree(priority: FloatArray) -> npt.NDArray[np.int64]:
    """Invasion tree from the grid edge: each cell's parent is the cell it was reached from.

    A priority flood over a random field grows a dendritic spanning forest, as rivers do.
    """
    m_rows, m_cols = priority.shape
    inner = np.zeros((m_rows, m_cols), dtype=bool)
    inner[1:-1, 1:-1] = True
    edge = np.flatnonzero(~inner).tolist()
    p = priority.ravel().tolist()
    heap = [(p[i], i) for i in edge]
    heapq.heapify(heap)
    closed = bytearray((~inner).ravel().tobytes())
    parent = [-1] * (m_rows * m_cols)
    steps = ((-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1))
    while heap:
        _, c = heapq.heappop(heap)
        r, q = divmod(c, m_cols)
        for dr, dc in steps:
            rr, qq = r + dr, q + dc
            if 0 <= rr < m_rows and 0 <= qq < m_cols:
                nb = rr * m_cols + qq
                if not closed[nb]:
                    closed[nb] = 1
                    parent[nb] = c
                    heapq.heappush(heap, (p[nb], nb))
    return np.array(parent, dtype=np.int64)


def make_dem(n: int, seed: int) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Elevations (whole metres), and fine (row, col) of trunk-river cells (for placing barriers).

    A river network is grown on a coarse grid (8 x 8 cells) as an invasion tree over a fractal field
    tilted to the south; each coarse cell then rises above its downstream cell by the stream-power
    slope ``k x A^-0.45`` (``A`` upstream km2, ``k`` varying smoothly: plains and mountains), a
    steady-state fluvial landscape. Interpolated to 100 m, with 10 m of fractal detail, closed sinks
    and 1 m of sensor noise, and rounded to whole metres, it has pits, depressions and flats as real
    DEMs do (filling raises 13 % of the cells at 1000 x 1000 and 16 % at 2000 x 2000; it raises
    12.7 % of the ALOS DEM in shared/data).
    """
    from scipy import ndimage

    from plastic_hotspots.maps.science import terrain

    rng = np.random.default_rng(seed)
    m = -(-n // COARSE)
    coarse_m = CELL * COARSE
    rows = np.arange(m, dtype=np.float64)[:, None]
    down = _flood_tree(_spectral(rng, m, 1.6, 250.0, 1.0) + 0.004 * (m - rows))
    levels = terrain.flow_levels(down)
    area_km2 = terrain.accumulate(down, levels, np.ones(m * m)) * (coarse_m / 1000.0) ** 2
    k = 0.08 * np.exp(0.6 * _spectral(rng, m, 1.8, 200.0, 2.0)).ravel()
    rise = terrain.step_length(down, (m, m), coarse_m) * k * area_km2**-0.45
    z_coarse = terrain.downstream_distance(down, levels, rise, down < 0).reshape(m, m)
    trunk = np.flatnonzero(area_km2 >= 200.0)
    trunk_rc = np.stack(np.divmod(trunk, m), axis=1) * COARSE + COARSE // 2
    trunk_rc = trunk_rc[(trunk_rc < n).all(axis=1)]
    z = ndimage.zoom(z_coarse, COARSE, order=1, grid_mode=True, mode="nearest")[:n, :n]
    z += 10.0 * _spectral(rng, n, 1.8, 20.0, 1.0)
    # Closed sinks (karst, lakes, quarries): bowls 2-30 m deep and 0.5-3 km across.
    n_sinks = round(5 * n * n / 1e6)
    for r, c, radius, depth in zip(
        rng.integers(0, n, n_sinks).tolist(),
        rng.integers(0, n, n_sinks).tolist(),
        rng.uniform(2.5, 15.0, n_sinks).tolist(),
        rng.uniform(2.0, 30.0, n_sinks).tolist(),
        strict=True,
    ):
        w = int(radius) + 1
        r0, r1, c0, c1 = max(r - w, 0), min(r + w + 1, n), max(c - w, 0), min(c + w + 1, n)
        d2 = ((np.arange(r0, r1)[:, None] - r) ** 2 + (np.arange(c0, c1)[None, :] - c) ** 2) / radius**2
        z[r0:r1, c0:c1] -= depth * np.clip(1.0 - d2, 0.0, None)
    z += rng.normal(0.0, 1.0, (n, n))
    z -= z.min() - 5.0
    return np.round(z), trunk_rc


def _write_tif(
    path: Path, values: npt.NDArray[np.float32], crs: str, transform: object, nodata: float
) -> None:
    import rasterio

    with rasterio.open(
        path,
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
        tiled=True,
        blockxsize=512,
        blockysize=512,
        BIGTIFF="IF_SAFER",
    ) as dst:
        dst.write(values, 1)


def make_basin(folder: Path, n: int, seed: int) -> Path:
    """Write the basin's layers and ``basin.yaml`` into ``folder``; reuse them if already there."""
    config_path = folder / "basin.yaml"
    stamp = folder / "generator.json"
    want = {"version": GENERATOR_VERSION, "size": n, "seed": seed}
    if config_path.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == want:
        return config_path
    import geopandas as gpd
    import pandas as pd
    import yaml
    from pyproj import Transformer
    from rasterio.transform import from_origin
    from shapely.geometry import Point

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 1)
    to_grid = Transformer.from_crs("EPSG:4326", CRS, always_xy=True)
    to_ll = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    cx, cy = to_grid.transform(*CENTRE_LONLAT)
    west = round((cx - n * CELL / 2) / CELL) * CELL
    north = round((cy + n * CELL / 2) / CELL) * CELL

    dem, trunk_rc = make_dem(n, seed)
    _write_tif(folder / "dem.tif", dem.astype(np.float32), CRS, from_origin(west, north, CELL, CELL), NODATA)
    del dem

    def cell_xy(r: FloatArray, c: FloatArray) -> tuple[FloatArray, FloatArray]:
        return west + (c + 0.5) * CELL, north - (r + 0.5) * CELL

    # Barriers on trunk rivers: dams, weirs and bridges, about 3 per 1000 x 1000 cells.
    n_bar = min(max(4, round(3 * n * n / 1e6)), len(trunk_rc))
    pick = trunk_rc[rng.choice(len(trunk_rc), n_bar, replace=False)].astype(np.float64)
    kinds = rng.choice(["dam", "weir", "bridge", "bridge"], n_bar)
    bx, by = cell_xy(pick[:, 0], pick[:, 1])
    barriers = gpd.GeoDataFrame(
        {"name": [f"{k} {i + 1}" for i, k in enumerate(kinds)], "kind": kinds},
        geometry=gpd.points_from_xy(bx, by),
        crs=CRS,
    ).to_crs("EPSG:4326")
    barriers.to_file(folder / "barriers.gpkg", layer="barriers", driver="GPKG", engine="pyogrio")

    # Towns, one per ~250 km2, and their waste-collection zones.
    n_towns = max(3, round(40 * n * n / 1e6))
    t_r = rng.uniform(0, n, n_towns)
    t_c = rng.uniform(0, n, n_towns)
    people = np.exp(rng.uniform(np.log(2e3), np.log(2e5), n_towns))
    sigma_m = 300.0 * np.sqrt(people / 2e3)
    tx, ty = cell_xy(t_r, t_c)
    t_lon, t_lat = to_ll.transform(tx, ty)
    zones = gpd.GeoDataFrame(
        {
            "name": [f"Town {i + 1}" for i in range(n_towns)],
            "generation_kg_per_cap_day": rng.uniform(0.5, 1.0, n_towns),
            "plastic_share": rng.uniform(0.1, 0.15, n_towns),
            "collection_rate": rng.uniform(0.05, 0.9, n_towns),
        },
        geometry=[
            Point(float(x), float(y)).buffer(2.5 * float(s), 32)
            for x, y, s in zip(tx, ty, sigma_m, strict=True)
        ],
        crs=CRS,
    ).to_crs("EPSG:4326")
    zones.to_file(folder / "zones.gpkg", layer="zones", driver="GPKG", engine="pyogrio")

    # Population: people per pixel on a 3 arc-second lon/lat raster covering the DEM.
    xs = np.array([west, west + n * CELL, west + n * CELL, west])
    ys = np.array([north, north, north - n * CELL, north - n * CELL])
    lons, lats = to_ll.transform(xs, ys)
    w, e = float(np.min(lons)), float(np.max(lons))
    s, nn = float(np.min(lats)), float(np.max(lats))
    pw = int(np.ceil((e - w) / POP_PIXEL_DEG))
    ph = int(np.ceil((nn - s) / POP_PIXEL_DEG))
    lat_c = nn - (np.arange(ph) + 0.5) * POP_PIXEL_DEG
    lon_c = w + (np.arange(pw) + 0.5) * POP_PIXEL_DEG
    km2 = (POP_PIXEL_DEG * 111.32 * np.cos(np.radians(lat_c)))[:, None] * (POP_PIXEL_DEG * 110.57)
    # Rural people: 10-100 per km2 where a smooth field says inhabited (about two thirds of the area).
    m = max(ph, pw)
    field = _spectral(rng, m, 1.5, 400.0, 5.0)[:ph, :pw]
    rural = np.where(field > -0.45, 30.0 * np.exp(0.6 * field), 0.0)
    del field
    pop = (rural * km2).astype(np.float32)
    del rural
    for lon, lat, p, sig in zip(
        t_lon.tolist(), t_lat.tolist(), people.tolist(), sigma_m.tolist(), strict=True
    ):
        sig_deg = sig / 111_000.0
        half = int(np.ceil(4 * sig_deg / POP_PIXEL_DEG))
        i = int((nn - lat) / POP_PIXEL_DEG)
        j = int((lon - w) / POP_PIXEL_DEG)
        i0, i1, j0, j1 = max(i - half, 0), min(i + half + 1, ph), max(j - half, 0), min(j + half + 1, pw)
        if i0 >= i1 or j0 >= j1:
            continue
        dlat = lat_c[i0:i1, None] - lat
        dlon = (lon_c[None, j0:j1] - lon) * np.cos(np.radians(lat))
        blob = np.exp(-(dlat * dlat + dlon * dlon) / (2 * sig_deg * sig_deg))
        pop[i0:i1, j0:j1] += (p * blob / blob.sum()).astype(np.float32)
    _write_tif(
        folder / "population.tif",
        pop,
        "EPSG:4326",
        from_origin(w, nn, POP_PIXEL_DEG, POP_PIXEL_DEG),
        -99999.0,
    )
    del pop

    # Survey: drives between towns, an image every 20 m, Poisson litter counts.
    rows = []
    start = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    n_tracks = max(2, round(8 * n * n / 16e6))
    for t in range(n_tracks):
        a, b = rng.choice(n_towns, 2, replace=False)
        length_m = float(np.hypot(tx[a] - tx[b], ty[a] - ty[b]))
        k = max(2, min(int(length_m / 20.0), 5000))
        f = np.linspace(0.0, 1.0, k)
        px = tx[a] + f * (tx[b] - tx[a]) + rng.normal(0, 5, k)
        py = ty[a] + f * (ty[b] - ty[a]) + rng.normal(0, 5, k)
        items = rng.poisson(0.3 + 3.0 * np.exp(-np.minimum(f, 1 - f) * length_m / 2000.0))
        for i in range(k):
            rows.append(
                {
                    "image": f"drive-{t:03d}/img_{i:05d}.jpg",
                    "track": f"drive-{t:03d}",
                    "captured_at": (start + timedelta(days=t, seconds=2 * i)).isoformat(),
                    "items": int(items[i]),
                    "x": float(px[i]),
                    "y": float(py[i]),
                }
            )
    table = pd.DataFrame(rows)
    points = gpd.points_from_xy(table.pop("x"), table.pop("y"))
    survey = gpd.GeoDataFrame(table, geometry=points, crs=CRS).to_crs("EPSG:4326")
    survey.to_parquet(folder / "observations.parquet", index=False)

    # The area of interest: the DEM's extent in lon/lat, a fifth of a cell inside its edges.
    d = 0.2 * CELL
    lo, la = to_ll.transform(
        np.array([west + d, west + n * CELL - d, west + n * CELL - d, west + d]),
        np.array([north - n * CELL + d, north - n * CELL + d, north - d, north - d]),
    )
    aoi = [
        float(max(lo[0], lo[3])),
        float(max(la[0], la[1])),
        float(min(lo[1], lo[2])),
        float(min(la[2], la[3])),
    ]
    config = {
        "name": f"Synthetic basin {n}x{n} (seed {seed})",
        "cell_size_m": CELL,
        "crs": CRS,
        "area_of_interest": [round(v, 7) for v in aoi],
        "layers": {
            "dem": "dem.tif",
            "population": "population.tif",
            "zones": "zones.gpkg",
            "barriers": "barriers.gpkg",
            "observations": "observations.parquet",
        },
    }
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    stamp.write_text(json.dumps(want))
    return config_path


# --------------------------------------------------------------------------------------------------
# The two measurements, each run in a child process
# --------------------------------------------------------------------------------------------------


def _peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _child_pysheds(dem_path: Path) -> dict[str, object]:
    import rasterio
    from pysheds.grid import Grid
    from rasterio.transform import from_origin

    # Numba compiles (or loads from its cache) on first use: do that on a tiny DEM first.
    warm = dem_path.parent / "warm-up-dem.tif"
    tiny = np.random.default_rng(0).uniform(0, 10, (64, 64)).round().astype(np.float32)
    _write_tif(warm, tiny, CRS, from_origin(0, 6400, CELL, CELL), NODATA)
    _pysheds_condition_and_route(Grid, warm)
    warm.unlink()
    rss_before = _peak_rss_mib()

    t0 = time.perf_counter()
    steps = _pysheds_condition_and_route(Grid, dem_path)
    seconds = time.perf_counter() - t0
    with rasterio.open(dem_path) as src:
        cells = src.width * src.height
    return {
        "seconds": seconds,
        "steps": steps,
        "peak_mib": _peak_rss_mib(),
        "warm_mib": rss_before,
        "cells": cells,
    }


def _pysheds_condition_and_route(grid_cls: type, dem_path: Path) -> dict[str, float]:
    """pysheds' README conditioning and D8 routing; seconds per step."""
    steps: dict[str, float] = {}
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        steps[name] = now - t
        t = now

    grid = grid_cls.from_raster(str(dem_path))
    dem = grid.read_raster(str(dem_path))
    lap("read")
    pit_filled = grid.fill_pits(dem)
    lap("fill_pits")
    flooded = grid.fill_depressions(pit_filled)
    lap("fill_depressions")
    del pit_filled
    inflated = grid.resolve_flats(flooded)
    lap("resolve_flats")
    del flooded
    fdir = grid.flowdir(inflated)
    lap("flowdir")
    del inflated
    acc = grid.accumulation(fdir)
    lap("accumulation")
    if not np.isfinite(np.asarray(acc)).any():
        raise SystemExit("pysheds produced no accumulation")
    return steps


def _child_model(config_path: Path, out_dir: Path, profile: int) -> dict[str, object]:
    from plastic_hotspots.maps.config import load_config
    from plastic_hotspots.maps.science import model
    from plastic_hotspots.maps.wholegrid.run import run_hotspots

    # Time the flow graph inside the run too (fill, D8, levels, accumulation, slope): what pysheds does.
    build = model.build_flow_graph
    inside: dict[str, float] = {}

    def timed_build(*args: Any, **kwargs: Any) -> model.FlowGraph:
        t = time.perf_counter()
        graph = build(*args, **kwargs)
        inside["flow_graph_seconds"] = time.perf_counter() - t
        return graph

    model.build_flow_graph = timed_build  # type: ignore[assignment]
    config = load_config(config_path)
    rss_before = _peak_rss_mib()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0 = time.perf_counter()
    result, outputs = run_hotspots(config, out_dir)
    seconds = time.perf_counter() - t0
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(profile)
    grid = result.grid
    return {
        "seconds": seconds,
        "peak_mib": _peak_rss_mib(),
        "warm_mib": rss_before,
        "cells": grid.width * grid.height,
        "shape": [grid.height, grid.width],
        "hotspots": len(result.hotspots),
        "written_mib": sum(p.stat().st_size for p in outputs.directory.iterdir()) / 2**20,
        **inside,
    }


def _vm_hwm_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of a running process, MiB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def _run_child(args: list[str], memory_limit_gib: float | None) -> dict[str, object]:
    """Run this script as a child with ``args``; return the JSON it prints last.

    The child's peak memory is also sampled from outside (every 0.2 s), so that a child that fails
    (for example out of memory under ``memory_limit_gib``) still reports how far it got.
    """

    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, __file__, *args, "--memory-limit", str(memory_limit_gib or 0)],
            stdout=out,
            stderr=err,
            text=True,
        )
        sampled = 0.0
        while proc.poll() is None:
            sampled = max(sampled, _vm_hwm_mib(proc.pid))
            time.sleep(0.2)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if stderr.strip():
        sys.stderr.write(stderr[-20000:])
    if proc.returncode != 0:
        tail = stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        return {
            "error": tail[0][:300],
            "seconds": time.perf_counter() - t0,
            "peak_mib": sampled,
            "exit_code": proc.returncode,
        }
    report: dict[str, object] = json.loads(stdout.strip().splitlines()[-1])
    return report


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    """Generate the basins, time both in alternating rounds, print times, memory and ratios."""
    if len(sys.argv) > 1 and sys.argv[1] in ("--child-pysheds", "--child-model"):
        cap_gib = float(sys.argv[sys.argv.index("--memory-limit") + 1])
        if cap_gib > 0:
            import resource

            cap = int(cap_gib * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        if sys.argv[1] == "--child-pysheds":
            report = _child_pysheds(Path(sys.argv[2]))
        else:
            report = _child_model(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
        print(json.dumps(report))
        return

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=4000, help="cells per side of the compared grid")
    parser.add_argument("--scale-to", type=int, default=None, help="also time the model alone at this size")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds; medians are compared")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="folder for inputs and outputs (kept)")
    parser.add_argument("--skip-pysheds", action="store_true", help="time the model only")
    parser.add_argument(
        "--memory-limit",
        type=float,
        default=None,
        metavar="GIB",
        help="address-space cap for each timed process: it fails with MemoryError instead of "
        "pushing the machine into its out-of-memory killer",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="print the N costliest functions of the model run (cProfile; it slows the run)",
    )
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="hotspot-bench-"))
    sizes = [args.size] + ([args.scale_to] if args.scale_to else [])
    print(
        f"{os.cpu_count()} CPUs, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"Python {sys.version.split()[0]}, numpy {np.__version__}"
    )
    configs: dict[int, Path] = {}
    for n in sizes:
        t0 = time.perf_counter()
        configs[n] = make_basin(work / f"basin-{n}", n, args.seed)
        took = time.perf_counter() - t0
        print(f"basin {n}x{n} ({n * n / 1e6:.0f} M cells) ready in {took:.0f} s: {configs[n]}")

    times: dict[tuple[str, int], list[float]] = {}
    peaks: dict[tuple[str, int], float] = {}
    failed: dict[tuple[str, int], str] = {}
    flow_graph: dict[int, list[float]] = {}
    for k in range(args.rounds):
        for n in sizes:
            runs = ["model"] if args.skip_pysheds or n != args.size else ["pysheds", "model"]
            for what in runs:
                if (what, n) in failed:
                    continue
                if what == "pysheds":
                    child = ["--child-pysheds", str(configs[n].parent / "dem.tif")]
                else:
                    out = work / f"out-{n}"
                    shutil.rmtree(out, ignore_errors=True)
                    child = ["--child-model", str(configs[n]), str(out), str(args.profile)]
                report = _run_child(child, args.memory_limit)
                seconds = float(report["seconds"])  # type: ignore[arg-type]
                peak = float(report["peak_mib"])  # type: ignore[arg-type]
                peaks[(what, n)] = max(peaks.get((what, n), 0.0), peak)
                if "error" in report:
                    failed[(what, n)] = str(report["error"])
                    print(
                        f"round {k + 1} {what:7s} {n}x{n}: FAILED after {seconds:.1f} s at peak RSS "
                        f"{peak / 1024:.2f} GiB: {report['error']}",
                        flush=True,
                    )
                    continue
                if what == "pysheds":
                    steps = report["steps"]
                    assert isinstance(steps, dict)
                    detail = ", ".join(f"{name} {v:.1f}" for name, v in steps.items())
                else:
                    detail = (
                        f"grid {report['shape']}, of which the flow graph "
                        f"{report['flow_graph_seconds']:.1f} s; {report['written_mib']:.0f} MiB written"
                    )
                times.setdefault((what, n), []).append(seconds)
                if what == "model":
                    inner = report["flow_graph_seconds"]
                    assert isinstance(inner, float)
                    flow_graph.setdefault(n, []).append(inner)
                print(
                    f"round {k + 1} {what:7s} {n}x{n}: {seconds:7.1f} s, peak RSS {peak / 1024:.2f} GiB "
                    f"({detail})",
                    flush=True,
                )

    med = {key: statistics.median(v) for key, v in times.items()}
    print()
    for what, n in sorted({*times, *failed}, key=lambda key: (key[1], key[0])):
        label = "pysheds condition + D8 + accumulation" if what == "pysheds" else "hotspot model end to end"
        if (what, n) in failed:
            peak_gib = peaks[(what, n)] / 1024
            print(f"{label:40s} {n}x{n}: failed ({failed[(what, n)]}), peak RSS {peak_gib:.2f} GiB")
            continue
        print(
            f"{label:40s} {n}x{n}: {med[(what, n)]:7.1f} s (median of {len(times[(what, n)])}), "
            f"peak RSS {peaks[(what, n)] / 1024:.2f} GiB"
        )
    n = args.size
    if ("pysheds", n) in med and ("model", n) in med:
        ratio = med[("model", n)] / med[("pysheds", n)]
        print(f"ours / pysheds at {n}x{n} = {ratio:.2f}  (goal <= 1.50)  {_verdict(ratio <= 1.5)}")
        inner = statistics.median(flow_graph[n])
        print(
            f"  for reference: our flow graph (fill, D8, levels, accumulation, slope) in that run: "
            f"{inner:.1f} s, {inner / med[('pysheds', n)]:.2f} x pysheds"
        )
    if args.scale_to:
        m = args.scale_to
        goal = 1.125 * (m * m) / (n * n)
        if ("model", m) in med and ("model", n) in med:
            ratio = med[("model", m)] / med[("model", n)]
            print(
                f"ours {m}x{m} / ours {n}x{n} = {ratio:.2f} for {m * m / (n * n):.1f}x the cells "
                f"(goal < {goal:.2f})  {_verdict(ratio < goal)}"
            )
        else:
            print(f"ours {m}x{m} / ours {n}x{n}: not measured, a run failed (goal < {goal:.2f})  MISS")


if __name__ == "__main__":
    main()
