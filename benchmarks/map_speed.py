"""Size and opening time of the interactive map for a large survey, against a stock folium map.

Builds a synthetic result directory with ``--photos`` survey photos and ``--cells`` observed-density
cells (plus a basin, DEM, leakage raster, rivers, barriers and hotspots), renders it with
``plastic-hotspots map``'s code, and renders the same layers the stock way (one folium GeoJSON
feature per photo and per cell, popups from properties, Leaflet inlined so it also opens offline).
Both pages are opened in headless Chromium with the network blocked; the time from navigation to
the page being drawn (load event, then two animation frames) is measured, median of ``--rounds``.

Goals (issue: interactive maps): the map stays under 20 MB and opens in under 5 s on 2 cores.

    python benchmarks/map_speed.py --photos 100000 --cells 50000
"""

from __future__ import annotations

import argparse
import html
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from pyproj import Transformer
from rasterio.transform import Affine
from shapely.geometry import LineString, Point, box

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the headless-Chromium driver the browser tests use

CRS = "EPSG:32647"
CLASSES = ("bottle", "bag_film", "wrapper", "cup")

PROBE = """
(async () => {
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const nav = performance.getEntriesByType("navigation")[0];
  const pre = document.createElement("pre");
  pre.id = "bench";
  pre.textContent = JSON.stringify({load: nav.loadEventEnd, drawn: performance.now()});
  document.body.appendChild(pre);
})()
"""


def make_result_dir(out: Path, photos: int, cells: int, seed: int = 1) -> Path:
    """A hotspot result directory with a survey of ``photos`` photos over ``cells`` density cells."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    side = int(np.ceil(np.sqrt(cells)))
    cell = 100.0
    x0, y0 = Transformer.from_crs("EPSG:4326", CRS, always_xy=True).transform(100.0, 20.0)
    west, north = round(x0, -2), round(y0, -2) + side * cell
    size = side * cell
    pixels = 400
    transform = Affine(size / pixels, 0, west, 0, -size / pixels, north)
    rows, cols = np.mgrid[0:pixels, 0:pixels].astype(float)
    dem = (
        200
        + 3 * np.abs(cols - pixels / 2)
        + 0.5 * (pixels - rows)
        + 20 * np.sin(rows / 17) * np.cos(cols / 23)
    )
    leak = np.exp(-((rows - 150) ** 2 + (cols - 220) ** 2) / 800.0) * 50
    for name, values in (("dem.tif", dem), ("leakage_index.tif", leak)):
        with rasterio.open(
            out / name,
            "w",
            driver="GTiff",
            width=pixels,
            height=pixels,
            count=1,
            dtype="float32",
            crs=CRS,
            transform=transform,
            nodata=float("nan"),
        ) as dst:
            dst.write(values.astype(np.float32), 1)
    frames: dict[str, gpd.GeoDataFrame] = {}
    frames["basin"] = gpd.GeoDataFrame(
        {"name": ["Benchmark basin"], "area_km2": [size * size / 1e6]},
        geometry=[box(west, north - size, west + size, north)],
        crs=CRS,
    )
    k = np.arange(cells)
    r, c = k // side, k % side
    rate = rng.gamma(1.5, 0.6, cells)
    obs = rng.integers(1, 40, cells)
    frames["observed_density"] = gpd.GeoDataFrame(
        {
            "row": r,
            "col": c,
            "observations": obs,
            "effort_km": obs * 0.01,
            "items": np.round(rate * obs),
            "rate": rate,
            "rate_lo": rate * 0.6,
            "rate_hi": rate * 1.6,
            "surveyed": obs >= 3,
            "gi_z": rng.normal(0, 1.5, cells),
            "gi_p": rng.uniform(0, 1, cells),
            **{f"n_{name}": np.round(rate * obs / len(CLASSES)) for name in CLASSES},
        },
        geometry=[
            box(west + cc * cell, north - (rr + 1) * cell, west + (cc + 1) * cell, north - rr * cell)
            for rr, cc in zip(r, c, strict=True)
        ],
        crs=CRS,
    )
    px = west + rng.uniform(0, size, photos)
    py = north - rng.uniform(0, size, photos)
    items = rng.poisson(0.8, photos)
    days = rng.integers(0, 30, photos)
    frames["survey_points"] = gpd.GeoDataFrame(
        {
            "items": items,
            **{f"n_{name}": rng.binomial(items, 0.25) for name in CLASSES},
            "captured_at": [f"2025-03-{1 + d:02d}T09:00:00+07:00" for d in days],
            "image": [f"IMG_{i:06d}.jpg" for i in range(photos)],
            "track": [f"v{i // 500}" for i in range(photos)],
        },
        geometry=gpd.points_from_xy(px, py),
        crs=CRS,
    )
    frames["rivers"] = gpd.GeoDataFrame(
        {"order": [1, 2]},
        geometry=[
            LineString([(west + size * 0.2, north), (west + size / 2, north - size / 2)]),
            LineString([(west + size / 2, north - size / 2), (west + size / 2, north - size)]),
        ],
        crs=CRS,
    )
    frames["barriers"] = gpd.GeoDataFrame(
        {"name": ["Dam"], "kind": ["dam"], "retained_kg_yr": [10.0]},
        geometry=[Point(west + size / 2, north - size * 0.7)],
        crs=CRS,
    )
    for kind in ("leakage", "accumulation"):
        frames[f"{kind}_hotspots"] = gpd.GeoDataFrame(
            {"rank": [1, 2], "value": [50.0, 20.0], "unit": ["kg/yr"] * 2, "driver": ["population"] * 2},
            geometry=[
                Point(west + size * 0.55, north - size * 0.37),
                Point(west + size / 2, north - size * 0.8),
            ],
            crs=CRS,
        )
    gpkg = out / "hotspots.gpkg"
    for name, frame in frames.items():
        frame.to_crs("EPSG:4326").to_file(gpkg, layer=name, driver="GPKG", engine="pyogrio")
    (out / "provenance.json").write_text(
        json.dumps({"tool": "benchmark", "version": "bench"}), encoding="utf-8"
    )
    return out


def render_stock(result_dir: Path, out_html: Path) -> Path:
    """The same layers the stock folium way: a GeoJSON feature per cell and per photo, with popups."""
    import folium

    from plastic_hotspots.maps.render.webmap import _make_offline

    cells = gpd.read_file(result_dir / "hotspots.gpkg", layer="observed_density")
    points = gpd.read_file(result_dir / "hotspots.gpkg", layer="survey_points")
    basin = gpd.read_file(result_dir / "hotspots.gpkg", layer="basin")
    w, s, e, n = basin.total_bounds
    fmap = folium.Map(location=[(s + n) / 2, (w + e) / 2], zoom_start=12, tiles=None, prefer_canvas=True)
    _make_offline(fmap)
    cells["rate"] = cells["rate"].round(3)
    folium.GeoJson(
        cells[["rate", "rate_lo", "rate_hi", "observations", "geometry"]],
        name="Observed density",
        style_function=lambda f: {"fillColor": "#3b528b", "weight": 0.4, "fillOpacity": 0.6},
        popup=folium.GeoJsonPopup(fields=["rate", "rate_lo", "rate_hi", "observations"]),
    ).add_to(fmap)
    folium.GeoJson(
        points[["items", "captured_at", "image", "geometry"]],
        name="Survey photos",
        marker=folium.CircleMarker(radius=3, fill=True),
        popup=folium.GeoJsonPopup(fields=["items", "captured_at", "image"]),
    ).add_to(fmap)
    folium.LayerControl().add_to(fmap)
    fmap.fit_bounds([[s, w], [n, e]])
    out_html.write_text(fmap.get_root().render(), encoding="utf-8")
    return out_html


def open_time(page: Path, rounds: int) -> float:
    """Median seconds from navigation to the page drawn, in headless Chromium."""
    from browser import run_headless

    times = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            errors, dom = run_headless(
                page, Path(tmp) / "shot.png", script=PROBE, settle_s=0.2, timeout_s=180
            )
        if errors:
            raise RuntimeError(f"{page.name}: {errors[:3]}")
        found = re.search(r'<pre id="bench">(.*?)</pre>', dom, re.DOTALL)
        if not found:
            raise RuntimeError(f"{page.name}: the probe did not run")
        timing = json.loads(html.unescape(found.group(1)))
        times.append(max(timing["load"], timing["drawn"]) / 1000.0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--cells", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None, help="keep the pages here (default: a temp dir)")
    args = parser.parse_args()

    from plastic_hotspots.maps.render.webmap import render_map

    work = args.work or Path(tempfile.mkdtemp(prefix="map-bench-"))
    result = make_result_dir(work / "result", args.photos, args.cells)
    t0 = time.perf_counter()
    ours = render_map(result, work / "ours.html", title="Benchmark")
    t_render = time.perf_counter() - t0
    t0 = time.perf_counter()
    stock = render_stock(result, work / "stock.html")
    t_stock = time.perf_counter() - t0
    size_ours, size_stock = ours.stat().st_size / 1e6, stock.stat().st_size / 1e6
    open_ours = open_time(ours, args.rounds)
    open_stock = open_time(stock, args.rounds)
    print(f"{args.photos:,} photos, {args.cells:,} cells; Chromium headless, median of {args.rounds}")
    print(
        f"stock folium GeoJSON: {size_stock:6.1f} MB, written in {t_stock:5.1f} s, "
        f"opens in {open_stock:5.2f} s"
    )
    print(
        f"plastic-hotspots map: {size_ours:6.1f} MB, written in {t_render:5.1f} s, "
        f"opens in {open_ours:5.2f} s"
    )
    print(f"ratios ours/stock: size {size_ours / size_stock:.2f}, open time {open_ours / open_stock:.2f}")
    print(f"goal size < 20 MB: {'PASS' if size_ours < 20 else 'MISS'} ({size_ours:.1f} MB)")
    print(f"goal opens < 5 s: {'PASS' if open_ours < 5 else 'MISS'} ({open_ours:.2f} s)")


if __name__ == "__main__":
    main()
