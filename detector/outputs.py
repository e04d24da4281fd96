"""Merging a detection run's committed chunks into its GeoParquet, CSV and GeoPackage outputs."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd

from plastic_hotspots.geoio import atomic_path, write_geoparquet
from plastic_hotspots.litterlist import COLUMN
from plastic_hotspots.records import Provenance


@dataclass(frozen=True, slots=True)
class MergeSummary:
    """Counts over the merged outputs."""

    images: int
    rejected: int
    detections: int


def _points(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    lon = pd.to_numeric(frame["lon"], errors="coerce")
    lat = pd.to_numeric(frame["lat"], errors="coerce")
    geometry = gpd.points_from_xy(lon, lat)
    geometry[lon.isna().to_numpy() | lat.isna().to_numpy()] = None
    return gpd.GeoDataFrame(frame, geometry=geometry, crs="EPSG:4326")


def _read_parts(parts: Path, prefix: str) -> pd.DataFrame:
    files = sorted(parts.glob(f"{prefix}-*.parquet"))
    frames = [pd.read_parquet(f) for f in files]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def merge_parts(paths: dict[str, Path], provenance: Provenance, *, gpkg: bool) -> MergeSummary:
    """Merge the committed chunks under ``paths['parts']`` into the final outputs; remove the parts.

    Rows are sorted by image key (and detections by box) so the outputs do not depend on how the
    run was chunked or interrupted.
    """
    parts = paths["parts"]
    images = _read_parts(parts, "images")
    detections = _read_parts(parts, "detections")
    if detections.empty:
        detections = pd.DataFrame(
            {
                "image": pd.Series(dtype=str),
                "class_name": pd.Series(dtype=str),
                COLUMN: pd.Series(dtype=str),
                **{c: pd.Series(dtype=float) for c in ("score", "x1", "y1", "x2", "y2", "lon", "lat")},
                "location_error_m": pd.Series(dtype=float),
            }
        )
    images = images.sort_values("image", kind="stable").reset_index(drop=True)
    detections = detections.sort_values(["image", "x1", "y1", "class_name"], kind="stable").reset_index(
        drop=True
    )
    det_frame = _points(detections)
    img_frame = _points(images)
    write_geoparquet(det_frame, paths["detections"], provenance)
    write_geoparquet(img_frame, paths["images"], provenance)
    rejects = images[images["status"] == "rejected"][["image", "path", "reason", "message"]]
    with atomic_path(paths["rejects"]) as tmp:
        rejects.to_csv(tmp, index=False)
    if gpkg:
        with atomic_path(paths["gpkg"]) as gtmp:
            _write_gpkg(gtmp, det_frame, img_frame, provenance)
    shutil.rmtree(parts)
    return MergeSummary(
        images=int((images["status"] == "ok").sum()),
        rejected=int((images["status"] == "rejected").sum()),
        detections=len(detections),
    )


def _write_gpkg(
    gtmp: Path, det_frame: gpd.GeoDataFrame, img_frame: gpd.GeoDataFrame, provenance: Provenance
) -> None:
    det_frame.to_file(gtmp, layer="detections", driver="GPKG", engine="pyogrio")
    img_frame.to_file(gtmp, layer="images", driver="GPKG", engine="pyogrio")
    meta = pd.DataFrame({"key": ["provenance"], "value": [provenance.to_json()]})
    gpd.GeoDataFrame(meta, geometry=gpd.GeoSeries([None]), crs="EPSG:4326").to_file(
        gtmp, layer="provenance", driver="GPKG", engine="pyogrio"
    )
