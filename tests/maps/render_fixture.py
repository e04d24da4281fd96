"""A tiny synthetic hotspot result directory, as ``plastic-hotspots hotspots`` would write it.

60 x 60 cells of 100 m in EPSG:32647 (UTM 47N) around lon 100.1, lat 20.2: a DEM sloping to a valley,
a leakage index with a few hot cells, hotspots, rivers, barriers (one with a hostile name),
observed-density cells (some not surveyed) and survey photos.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from pyproj import Transformer
from rasterio.transform import Affine
from shapely.geometry import LineString, Point, box

CRS = "EPSG:32647"
SIZE = 60
CELL = 100.0
HOSTILE = "<script>alert('x')</script>"
ALL_LAYERS = (
    "basin",
    "subbasins",
    "rivers",
    "barriers",
    "leakage_hotspots",
    "accumulation_hotspots",
    "observed_density",
    "survey_points",
    "detections",
)
PHOTOS = 3  # survey photos written as real JPEG files, with detections, for the popup thumbnails


def origin() -> tuple[float, float]:
    """West and north edges of the grid (UTM metres), centred on lon 100.1, lat 20.2."""
    x, y = Transformer.from_crs("EPSG:4326", CRS, always_xy=True).transform(100.1, 20.2)
    half = SIZE * CELL / 2
    return round(x - half, -2), round(y + half, -2)


def _write_tif(path: Path, values: np.ndarray, west: float, north: float) -> None:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=SIZE,
        height=SIZE,
        count=1,
        dtype="float32",
        crs=CRS,
        transform=Affine(CELL, 0.0, west, 0.0, -CELL, north),
        nodata=float("nan"),
    ) as dst:
        dst.write(values.astype(np.float32), 1)


def _write_photo(path: Path, seed: int) -> Path:
    """A 400 x 300 JPEG: sky, ground and a few bright blobs where the boxes go."""
    from PIL import Image, ImageDraw

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (400, 300), (150, 190, 230))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 150, 400, 300), fill=(110, 100, 80))
    for k in range(3):
        draw.ellipse((50 + 90 * k, 70, 100 + 90 * k, 140), fill=(240, 240 - 40 * seed, 60))
    image.save(path, format="JPEG", quality=80)
    return path


def write_result_dir(
    out: Path,
    *,
    layers: Collection[str] = ALL_LAYERS,
    n_survey: int = 25,
    provenance: bool = True,
) -> Path:
    """Write the result directory ``out`` and return it.

    Args:
        out: Directory to create.
        layers: Which GeoPackage layers to write (``basin`` should be among them).
        n_survey: Number of survey photos.
        provenance: Whether to write ``provenance.json``.
    """
    out.mkdir(parents=True, exist_ok=True)
    west, north = origin()
    rows, cols = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    # A valley along column 30 draining south, with hills either side.
    dem = (
        150.0 + 6.0 * np.abs(cols - 30) + 2.0 * (SIZE - rows) + 40.0 * np.sin(rows / 6.0) * np.cos(cols / 7.0)
    )
    dem[:2, :3] = np.nan  # some nodata in a corner
    _write_tif(out / "dem.tif", dem, west, north)

    leakage = np.zeros((SIZE, SIZE))
    for r, c, v in ((12, 25, 40.0), (30, 33, 120.0), (45, 28, 8.0), (50, 40, 2.5)):
        leakage[r - 2 : r + 3, c - 2 : c + 3] = v * np.exp(
            -((rows[:5, :5] - 2) ** 2 + (cols[:5, :5] - 2) ** 2) / 3
        )
    leakage[leakage < 0.05] = 0.0
    _write_tif(out / "leakage_index.tif", leakage, west, north)
    accumulation = np.zeros((SIZE, SIZE))
    accumulation[:, 30] = np.linspace(0.0, 60.0, SIZE)
    _write_tif(out / "accumulation.tif", accumulation, west, north)

    def xy(r: float, c: float) -> tuple[float, float]:
        return west + (c + 0.5) * CELL, north - (r + 0.5) * CELL

    frames: dict[str, gpd.GeoDataFrame] = {}
    frames["basin"] = gpd.GeoDataFrame(
        {"name": ["Nam Test <b>basin</b>"], "area_km2": [30.0]},
        geometry=[box(west + 300, north - 5700, west + 5700, north - 300)],
        crs=CRS,
    )
    frames["subbasins"] = gpd.GeoDataFrame(
        {
            "subbasin": [1, 2],
            "name": ["Upper & west", "Lower"],
            "area_km2": [15.0, 15.0],
            "leakage_kg_yr": [350.5, 910.25],
            "accumulation_kg_yr": [12.0, 48.0],
        },
        geometry=[
            box(west + 300, north - 3000, west + 5700, north - 300),
            box(west + 300, north - 5700, west + 5700, north - 3000),
        ],
        crs=CRS,
    )
    frames["rivers"] = gpd.GeoDataFrame(
        {"order": [1, 1, 2, 3]},
        geometry=[
            LineString([xy(5, 10), xy(20, 30)]),
            LineString([xy(5, 50), xy(20, 30)]),
            LineString([xy(20, 30), xy(40, 30)]),
            LineString([xy(40, 30), xy(58, 30)]),
        ],
        crs=CRS,
    )
    frames["barriers"] = gpd.GeoDataFrame(
        {
            "name": [HOSTILE, "Ban Weir", "Old bridge", "Harbour"],
            "kind": ["dam", "weir", "bridge", "port"],
            "pass_factor": [0.4, 0.8, 0.95, 0.7],
            "retained_kg_yr": [30.0, 6.5, 0.8, 11.0],
        },
        geometry=[Point(xy(r, 30)) for r in (25, 35, 45, 55)],
        crs=CRS,
    )
    frames["leakage_hotspots"] = gpd.GeoDataFrame(
        {
            "rank": [1, 2, 3, 4],
            "value": [120.0, 40.0, 8.0, 2.5],
            "unit": ["kg/yr"] * 4,
            "driver": ["population", "poor collection", "near a river", "<img src=x onerror=alert(2)>"],
            "population": [5200.0, 1800.0, 300.0, 40.0],
            "collection_rate": [0.35, 0.5, 0.8, 0.9],
            "p_land": [0.9, 0.7, 0.45, 0.2],
        },
        geometry=[Point(xy(r, c)) for r, c in ((30, 33), (12, 25), (45, 28), (50, 40))],
        crs=CRS,
    )
    frames["accumulation_hotspots"] = gpd.GeoDataFrame(
        {
            "rank": [1, 2, 3],
            "value": [60.0, 30.0, 9.0],
            "unit": ["kg/yr"] * 3,
            "driver": ["dam", "low-slope reach", "in-channel retention"],
        },
        geometry=[Point(xy(r, 30)) for r in (58, 25, 40)],
        crs=CRS,
    )
    cells = []
    for i, (r, c) in enumerate(np.ndindex(3, 4)):
        r0, c0 = 20 + 5 * r, 10 + 5 * c
        surveyed = i % 4 != 3
        rate = 0.2 + 0.3 * i if surveyed else float("nan")
        cells.append(
            {
                "row": r0,
                "col": c0,
                "gi_z": (3.1, -2.2, 0.4)[i % 3] if surveyed else float("nan"),
                "gi_p": (0.002, 0.03, 0.7)[i % 3] if surveyed else float("nan"),
                "n_bottle": round(12 * rate * 0.6) if surveyed else 0.0,
                "n_bag_film": round(12 * rate * 0.4) if surveyed else 0.0,
                "observations": 12 if surveyed else 1,
                "effort_km": 0.8 if surveyed else 0.05,
                "items": round(12 * rate) if surveyed else 0.0,
                "rate": rate,
                "rate_lo": rate * 0.6 if surveyed else float("nan"),
                "rate_hi": rate * 1.5 if surveyed else float("nan"),
                "surveyed": surveyed,
                "geometry": box(
                    west + c0 * CELL, north - (r0 + 5) * CELL, west + (c0 + 5) * CELL, north - r0 * CELL
                ),
            }
        )
    frames["observed_density"] = gpd.GeoDataFrame(cells, geometry="geometry", crs=CRS)
    rng = np.random.default_rng(7)
    pr = rng.uniform(20, 35, n_survey)
    pc = rng.uniform(10, 30, n_survey)
    items = rng.poisson(1.0, n_survey).astype(np.int64)
    items[1 : PHOTOS + 1] = [3, 2, 1][: min(PHOTOS, n_survey - 1)]
    bottles = np.minimum(items, rng.integers(0, 2, n_survey))
    images = [f"IMG_{i:05d}.jpg" if i else "<b>bold</b>.jpg" for i in range(n_survey)]
    paths = [""] * n_survey
    boxes = []
    for i in range(1, min(PHOTOS, n_survey - 1) + 1):
        paths[i] = str(_write_photo(out / "photos" / images[i], i))
        for k in range(int(items[i])):
            boxes.append({"image": images[i], "class_name": "bottle" if k < bottles[i] else "bag_film",
                          "score": 0.9, "x1": 40.0 + 90 * k, "y1": 60.0, "x2": 110.0 + 90 * k, "y2": 150.0,
                          "geometry": Point(xy(pr[i], pc[i]))})  # fmt: skip
    frames["survey_points"] = gpd.GeoDataFrame(
        {
            "items": items,
            "n_bottle": bottles,
            "n_bag_film": items - bottles,
            "captured_at": [f"2024-05-0{1 + i % 2}T08:{i % 60:02d}:00+07:00" for i in range(n_survey)],
            "image": images,
            "path": paths,
        },
        geometry=[Point(xy(r, c)) for r, c in zip(pr, pc, strict=True)],
        crs=CRS,
    )
    frames["detections"] = gpd.GeoDataFrame(boxes, geometry="geometry", crs=CRS)
    gpkg = out / "hotspots.gpkg"
    for name in ALL_LAYERS:
        if name in layers and len(frames[name]):
            frames[name].to_crs("EPSG:4326").to_file(gpkg, layer=name, driver="GPKG", engine="pyogrio")
    if provenance:
        (out / "provenance.json").write_text(
            json.dumps(
                {
                    "tool": "maps.hotspots",
                    "version": "0.1.0-test",
                    "created_at": "2024-06-01T12:00:00+00:00",
                    "parameters": {"basin": "Nam Test"},
                    "inputs": [],
                    "model": None,
                }
            ),
            encoding="utf-8",
        )
    return out
