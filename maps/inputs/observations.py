"""Survey observations (pLitter tracks, detections) read and placed on a basin's grid."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd

from plastic_hotspots.maps.errors import CRSError, LayerError
from plastic_hotspots.maps.grid import lonlat_to_grid
from plastic_hotspots.maps.inputs.rasters import reading_layer, require_file
from plastic_hotspots.records import GridSpec

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def read_plitter_tracks(path: Path) -> gpd.GeoDataFrame:
    """PLitter track GeoJSON as one point per detection row (EPSG:4326).

    Each feature's ``properties.track`` rows are ``[lon, lat, video_time_ms, count, c1, c2, c3, c4]``;
    an item is one of c1, c2, c3 (c4 are bins, kept as a column but not counted as litter). All four
    classes stay as ``n_c1`` .. ``n_c4``; the feature's ``video`` (or ``name``) is the track.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LayerError(f"{path} is not valid GeoJSON: {exc}", hint="check the file") from exc
    rows = []
    for k, feature in enumerate(doc.get("features", []) if isinstance(doc, dict) else []):
        props = feature.get("properties") or {}
        track = str(props.get("video") or props.get("name") or f"track-{k}")
        for row in props.get("track") or []:
            if len(row) < 8:
                raise LayerError(
                    f"{path}: a track row has {len(row)} values, expected 8",
                    hint="rows are [lon, lat, video_ms, count, c1, c2, c3, c4]",
                )
            lon, lat, ms, _count, c1, c2, c3, c4 = (float(v) for v in row[:8])
            rows.append((track, lon, lat, ms, c1 + c2 + c3, c1, c2, c3, c4))
    if not rows:
        raise LayerError(
            f"{path} holds no pLitter track rows", hint="expect features with a `track` property"
        )
    frame = pd.DataFrame(
        rows, columns=["track", "lon", "lat", "video_ms", "items", "n_c1", "n_c2", "n_c3", "n_c4"]
    )
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs="EPSG:4326")


def is_track_file(path: Path) -> bool:
    """Whether ``path`` is a pLitter track file (GeoJSON whose first 64 KiB name a ``track``)."""
    if Path(path).suffix.lower() not in {".geojson", ".json"}:
        return False
    with Path(path).open("rb") as handle:
        return b'"track"' in handle.read(1 << 16)


def read_observations(path: Path) -> gpd.GeoDataFrame:
    """Survey points (EPSG:4326) from the detector's per-image GeoParquet or a pLitter track GeoJSON.

    Detector rows that were not usable (``status`` other than ``ok``) and rows without a position are
    dropped. Any other point layer with an ``items`` column (GeoParquet, GeoPackage, GeoJSON) works too.

    When the detector tracked its videos' items (``detect --track-items``), the table also holds
    ``unique_items`` and ``unique_n_<class>``: each item followed through a video counted once, in
    the sampled frame nearest to where it was best seen (photos and tiles count their own items). Those
    then replace ``items`` and ``n_<class>``, so densities are unique items per km of the track's
    effort, never the same item once per frame it appears in; the per-frame counts stay in the file.
    """
    path = Path(path)
    require_file(path, "observations")
    if is_track_file(path):
        return read_plitter_tracks(path)
    with reading_layer(path, "observations"):
        frame = (
            gpd.read_parquet(path)
            if path.suffix.lower() in (".parquet", ".geoparquet")
            else gpd.read_file(path, engine="pyogrio")
        )
    if frame.crs is None:
        raise CRSError(f"the observations {path} have no CRS", hint="write them as EPSG:4326 GeoParquet")
    if "items" not in frame.columns:
        raise LayerError(
            f"the observations {path} have no `items` column",
            hint="give one row per image with its item count (detect writes it in .images.parquet)",
        )
    if "status" in frame.columns:
        frame = frame[frame["status"] == "ok"]
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty].copy()
    # Counts written as text ("3") are read as numbers; text that is no number ("three") becomes a
    # missing count, which the density refuses with how many rows have one.
    for column in [c for c in frame.columns if c == "items" or c.startswith(("n_", "unique_"))]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    if "effort_km" in frame.columns:
        effort = pd.to_numeric(frame["effort_km"], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(effort) | (effort < 0)
        if bad.any():
            raise LayerError(
                f"{int(bad.sum())} of {len(frame)} observations in {path} have a missing, infinite or "
                "negative effort_km",
                hint="give each row the kilometres surveyed for it (0 for a photo), or leave the column out "
                "and the effort is taken from the spacing along each track",
            )
        frame["effort_km"] = effort
    kinds = sorted(set(frame.geom_type) - {"Point"})
    if kinds:
        raise LayerError(
            f"the observations {path} hold {', '.join(kinds)} geometries; each observation must be a point "
            "(where its image was taken)",
            hint="give one point per image or frame; for areas, use their centroids "
            "(geopandas: frame.geometry = frame.to_crs(a metric CRS).centroid)",
        )
    if "unique_items" in frame.columns and frame["unique_items"].notna().all():
        unique = {c: c.removeprefix("unique_") for c in frame.columns if c.startswith("unique_")}
        frame = frame.drop(columns=[c for c in frame.columns if c == "items" or c.startswith("n_")])
        frame = frame.rename(columns=unique)
    if frame.empty:
        raise LayerError(
            f"the observations {path} hold no usable geotagged rows",
            hint="check that the images had positions (see detect's rejects table)",
        )
    return frame.to_crs("EPSG:4326")


def observations_on_grid(frame: gpd.GeoDataFrame, grid: GridSpec) -> Observations:
    """Project survey points (from :func:`read_observations`) to the grid, with effort per point.

    Points are ordered within their ``track`` by ``video_ms``, else ``captured_at``, else file order;
    ``effort_km`` is taken from the frame when present, else derived from the track spacing.
    """
    x, y = lonlat_to_grid(grid, frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy())
    n = len(frame)
    track = frame["track"].astype(str).to_numpy() if "track" in frame.columns else np.full(n, "survey")
    order = np.arange(n, dtype=np.float64)
    if "video_ms" in frame.columns:
        order = frame["video_ms"].to_numpy(dtype=np.float64)
    elif "captured_at" in frame.columns:
        times = pd.to_datetime(frame["captured_at"], utc=True, errors="coerce", format="ISO8601")
        seconds = (times - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
        order = seconds.fillna(pd.Series(order, index=frame.index)).to_numpy()
    effort = (
        frame["effort_km"].to_numpy(dtype=np.float64)
        if "effort_km" in frame.columns
        else track_effort_km(x, y, track.astype(np.str_), order)
    )
    classes = {
        col[2:]: frame[col].to_numpy(dtype=np.float64) for col in frame.columns if col.startswith("n_")
    }
    return Observations(
        x=x,
        y=y,
        items=frame["items"].to_numpy(dtype=np.float64),
        track=track.astype(np.str_),
        effort_km=effort,
        classes=classes,
        image=frame["image"].astype(str).to_numpy().astype(np.str_) if "image" in frame.columns else None,
        captured_at=(
            frame["captured_at"].fillna("").astype(str).to_numpy().astype(np.str_)
            if "captured_at" in frame.columns
            else None
        ),
        path=frame["path"].astype(str).to_numpy().astype(np.str_) if "path" in frame.columns else None,
    )


def load_observations(path: Path, grid: GridSpec) -> Observations:
    """Read survey observations (see :func:`read_observations`) and project them to the grid."""
    return observations_on_grid(read_observations(path), grid)


def read_detections_beside(observations: Path) -> gpd.GeoDataFrame | None:
    """The detector's per-box table next to its per-image table (``X.parquet`` beside ``X.images.parquet``).

    Returns None when the observations are not a detector output or the boxes are not there.
    """
    name = observations.name
    if not name.endswith(".images.parquet"):
        return None
    boxes = observations.with_name(name[: -len(".images.parquet")] + ".parquet")
    if not boxes.is_file():
        return None
    frame = gpd.read_parquet(boxes)
    needed = {"image", "class_name", "score", "x1", "y1", "x2", "y2"}
    if not needed <= set(frame.columns):
        return None
    return frame.to_crs("EPSG:4326") if frame.crs is not None else None


@dataclass(frozen=True, slots=True, eq=False)
class Observations:
    """Survey observations in the grid CRS, one per image or frame.

    Attributes:
        x: Easting of each observation, metres.
        y: Northing, metres.
        items: Litter items counted in it.
        track: Survey unit (video, walk, drive) each observation belongs to.
        effort_km: Distance surveyed by each observation (half the gaps to its track neighbours).
        classes: Per-class item counts, each aligned with ``items``.
        image: Image or frame name of each observation, where known.
        captured_at: ISO capture time of each observation, where known.
        path: File each observation was read from (photo, video, tile), where known.
    """

    x: FloatArray
    y: FloatArray
    items: FloatArray
    track: npt.NDArray[np.str_]
    effort_km: FloatArray
    classes: Mapping[str, FloatArray] = field(default_factory=dict)
    image: npt.NDArray[np.str_] | None = None
    captured_at: npt.NDArray[np.str_] | None = None
    path: npt.NDArray[np.str_] | None = None

    def __post_init__(self) -> None:
        n = self.x.shape[0]
        for name in ("y", "items", "track", "effort_km"):
            if getattr(self, name).shape[0] != n:
                raise LayerError(
                    f"observation column {name!r} has {getattr(self, name).shape[0]} rows, expected {n}"
                )
        for name, counts in self.classes.items():
            if counts.shape[0] != n:
                raise LayerError(f"class column {name!r} has {counts.shape[0]} rows, expected {n}")
        if n and float(np.min(self.items)) < 0:
            raise LayerError("item counts must be >= 0", hint="check the observations' `items` column")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, keep: BoolArray) -> Observations:
        """The observations where ``keep`` is true."""
        return Observations(
            x=self.x[keep],
            y=self.y[keep],
            items=self.items[keep],
            track=self.track[keep],
            effort_km=self.effort_km[keep],
            classes={k: v[keep] for k, v in self.classes.items()},
            image=None if self.image is None else self.image[keep],
            captured_at=None if self.captured_at is None else self.captured_at[keep],
            path=None if self.path is None else self.path[keep],
        )


def track_effort_km(
    x: FloatArray, y: FloatArray, track: npt.NDArray[np.str_], order: FloatArray
) -> FloatArray:
    """Distance each observation represents, in km.

    Half the gap to the previous plus half to the next point of the same track (tracks ordered by
    ``order``, e.g. capture time). Gaps over 1 km are breaks in the survey and count nothing.
    """
    n = x.shape[0]
    effort = np.zeros(n, dtype=np.float64)
    if n == 0:
        return effort
    idx = np.lexsort((order, track))
    xs, ys, ts = x[idx], y[idx], track[idx]
    gaps = np.hypot(np.diff(xs), np.diff(ys))
    same = ts[1:] == ts[:-1]
    gaps = np.where(same & (gaps <= 1000.0), gaps, 0.0)
    half = gaps / 2.0
    sorted_effort = np.zeros(n, dtype=np.float64)
    sorted_effort[1:] += half
    sorted_effort[:-1] += half
    effort[idx] = sorted_effort / 1000.0
    return effort
