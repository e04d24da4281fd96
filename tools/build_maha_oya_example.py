"""Build the packaged Maha Oya example basin from the shared data (a maintainer script, never imported).

Reads ``../shared/data/maha_oya_srilanka`` (or ``--data DIR``) and writes the compact extract that ships
inside the wheel, ``maps/examples/maha_oya/``:

* ``dem.tif``: the SRTM 3" tiles mosaicked and cropped to the basin's box plus a margin (int16, deflate);
* ``census_gnd.geojson``: the Grama Niladhari divisions touching that box, with only the columns the
  config uses (id, name, total_population, total_households, collected_by_local_authorities);
* ``rivers.geojson``: the HydroRIVERS reaches of the Maha Oya (coordinates rounded to 1e-5 degree);
* ``ds_divisions.geojson``: the Divisional Secretariat divisions touching the box (name only, simplified);
* ``survey_mawanella.geojson``: the pLitter tracks, same format, only ``video`` and ``track`` kept;
* ``LICENSE-pLitter``, ``ATTRIBUTION.md`` (from ``maha_oya_attribution.md.in``) and ``basin.yaml``
  (paths relative to it).

Run from the repository root: ``python tools/build_maha_oya_example.py``; then reinstall
(``pip install -e .``) so the editable install links the files.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.merge import merge
from shapely.geometry import box

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "maha_oya_srilanka"
OUT = ROOT / "maps" / "examples" / "maha_oya"
# The basin the model delineates from the outlet on the full tiles spans 79.842-80.553 E, 7.056-7.477 N;
# the box adds about 3 km around it (and the sea off the mouth, which the model needs to see as sea).
BOX = (79.80, 7.02, 80.60, 7.51)
TILES = ("n07_e079_3arc_v2.tif", "n07_e080_3arc_v2.tif", "n06_e080_3arc_v2.tif")
CENSUS_COLUMNS = ["id", "name", "total_population", "total_households", "collected_by_local_authorities"]
SIMPLIFY_DEG = 0.0001  # about 11 m (the source is already simplified at 0.00005 degree)
DS_SIMPLIFY_DEG = 0.0001  # about 11 m: the DS divisions are drawn on the map only
ROUND = 5  # decimals of a degree kept in vector coordinates: about 1 m

CONFIG = """\
# The Maha Oya basin, Sri Lanka: a compact extract of real data (see ATTRIBUTION.md).
# The waste generation (0.34 kg per person per day) and plastic share (7 %) are Sri Lanka's national
# figures from the World Bank's What a Waste 2.0; the collection rate is each division's share of
# households served by local-authority collection (Census 2012).
name: Maha Oya, Sri Lanka
cell_size_m: 100
outlet: [79.844, 7.273]
layers:
  dem: dem.tif
  population: {path: census_gnd.geojson, count: total_population}
  zones:
    path: census_gnd.geojson
    collection_rate: collected_by_local_authorities / total_households
    generation_kg_per_cap_day: 0.34
    plastic_share: 0.07
  rivers: rivers.geojson
  observations: survey_mawanella.geojson
  boundaries: ds_divisions.geojson
"""

# ATTRIBUTION.md: every attribution and licence line of the shared data's SOURCE.md for what ships.
ATTRIBUTION_TEMPLATE = Path(__file__).with_name("maha_oya_attribution.md.in")


def _dem(data: Path, out: Path) -> tuple[int, int]:
    sources = [rasterio.open(data / "dem" / name) for name in TILES]
    try:
        mosaic, transform = merge(sources, bounds=BOX, nodata=-32767)
        profile = sources[0].profile
    finally:
        for src in sources:
            src.close()
    band = mosaic[0].astype(np.int16)
    profile.update(
        driver="GTiff",
        height=band.shape[0],
        width=band.shape[1],
        transform=transform,
        dtype="int16",
        nodata=-32767,
        compress="deflate",
        predictor=2,
        zlevel=9,
        tiled=True,
        blockxsize=256,
        blockysize=256,
    )
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(band, 1)
    return band.shape


def _write_geojson(frame: gpd.GeoDataFrame, path: Path) -> None:
    frame.to_file(
        path,
        driver="GeoJSON",
        engine="pyogrio",
        layer_options={"COORDINATE_PRECISION": str(ROUND), "WRITE_NAME": "NO"},
    )
    # GDAL indents and spaces its output: written again compactly (same numbers), a third smaller.
    doc = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n", encoding="utf-8")


def _census(data: Path, out: Path, area: Any) -> int:
    frame = gpd.read_file(data / "census" / "gnd_mahaoya_region_census2012.geojson").to_crs("EPSG:4326")
    frame = frame[frame.intersects(area)][[*CENSUS_COLUMNS, "geometry"]].copy()
    frame["geometry"] = frame.geometry.simplify(SIMPLIFY_DEG, preserve_topology=True)
    _write_geojson(frame.reset_index(drop=True), out)
    return len(frame)


def _rivers(data: Path, out: Path) -> int:
    frame = gpd.read_file(data / "rivers" / "hydrorivers_maha_oya_41404427.geojson").to_crs("EPSG:4326")
    frame = frame.drop(columns=[c for c in ("Shape_Length",) if c in frame.columns])
    _write_geojson(frame, out)
    return len(frame)


def _divisions(data: Path, out: Path, area: Any) -> int:
    frame = gpd.read_file(data / "admin" / "lk_dsds.geojson").to_crs("EPSG:4326")
    frame = frame[frame.intersects(area)]
    frame = gpd.GeoDataFrame(
        {"name": frame["adm3_name"].to_numpy()},
        geometry=frame.geometry.simplify(DS_SIMPLIFY_DEG, preserve_topology=True).to_numpy(),
        crs="EPSG:4326",
    )
    _write_geojson(frame, out)
    return len(frame)


def _survey(data: Path, out: Path) -> int:
    doc = json.loads((data / "survey" / "Mawanella_January_2022_A.geojson").read_text(encoding="utf-8"))
    features = []
    n = 0
    for feature in doc["features"]:
        props = feature["properties"]
        rows = [
            [round(r[0], ROUND), round(r[1], ROUND), round(r[2]), *(int(v) for v in r[3:8])]
            for r in props["track"]
        ]
        n += len(rows)
        video = props.get("video") or props.get("id")
        features.append({"type": "Feature", "properties": {"video": video, "track": rows}, "geometry": None})
    text = json.dumps({"type": "FeatureCollection", "features": features}, separators=(",", ":"))
    out.write_text(text + "\n", encoding="utf-8")
    return n


def main() -> None:
    """Write the extract."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared maha_oya_srilanka folder")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    data: Path = args.data
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    area = box(*BOX)
    shape = _dem(data, out / "dem.tif")
    print(f"dem.tif: {shape[1]} x {shape[0]} pixels")
    print(f"census_gnd.geojson: {_census(data, out / 'census_gnd.geojson', area)} divisions")
    print(f"rivers.geojson: {_rivers(data, out / 'rivers.geojson')} reaches")
    print(f"ds_divisions.geojson: {_divisions(data, out / 'ds_divisions.geojson', area)} divisions")
    print(f"survey_mawanella.geojson: {_survey(data, out / 'survey_mawanella.geojson')} track rows")
    shutil.copyfile(data / "survey" / "LICENSE-pLitter", out / "LICENSE-pLitter")
    (out / "basin.yaml").write_text(CONFIG, encoding="utf-8")
    (out / "ATTRIBUTION.md").write_text(
        ATTRIBUTION_TEMPLATE.read_text(encoding="utf-8").format(
            box=f"{BOX[0]}-{BOX[2]} E, {BOX[1]}-{BOX[3]} N",
            simplify=SIMPLIFY_DEG,
            ds_simplify=DS_SIMPLIFY_DEG,
            round=ROUND,
        ),
        encoding="utf-8",
    )
    total = sum(p.stat().st_size for p in out.iterdir())
    for path in sorted(out.iterdir()):
        print(f"{path.stat().st_size:>10,}  {path.name}")
    print(f"{total:>10,}  in all")


if __name__ == "__main__":
    main()
