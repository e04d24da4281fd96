"""Reading a hotspot result directory (``plastic-hotspots hotspots --out DIR``) for the map and report."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio

from plastic_hotspots.maps.errors import RenderError

HOTSPOTS_COMMAND = "plastic-hotspots hotspots --config basin.yaml --out DIR"

RESULT_LAYERS = (
    "basin",
    "subbasins",
    "rivers",
    "barriers",
    "leakage_hotspots",
    "accumulation_hotspots",
    "observed_density",
    "survey_points",
)
"""The vector layers of ``hotspots.gpkg`` that the map and the report read (optional ones may be absent)."""


def check_result_dir(result_dir: Path) -> Path:
    """The directory's ``hotspots.gpkg``; RenderError, saying how to make one, if it is not there."""
    hint = f"write it with `{HOTSPOTS_COMMAND}`, then pass that DIR"
    if not result_dir.is_dir():
        raise RenderError(f"result directory not found: {result_dir}", hint=hint)
    gpkg = result_dir / "hotspots.gpkg"
    if not gpkg.is_file():
        raise RenderError(
            f"{result_dir} has no hotspots.gpkg; it is not a hotspot result directory", hint=hint
        )
    return gpkg


def read_result_layers(gpkg: Path, names: Iterable[str]) -> dict[str, gpd.GeoDataFrame]:
    """Read the named, non-empty layers of ``hotspots.gpkg`` in EPSG:4326.

    Args:
        gpkg: Path of ``hotspots.gpkg``.
        names: The layers wanted; absent ones are left out.

    Returns:
        Layer name to frame; absent or empty layers (and rows without geometry) are left out.

    Raises:
        RenderError: The file cannot be read, or has no usable ``basin`` layer.
    """
    hint = f"write the result directory again with `{HOTSPOTS_COMMAND}`"
    try:
        present = {str(row[0]) for row in pyogrio.list_layers(gpkg)}
    except Exception as exc:  # pyogrio raises several unrelated types for unreadable files
        raise RenderError(f"cannot read {gpkg}: {exc}", hint=hint) from exc
    layers: dict[str, gpd.GeoDataFrame] = {}
    for name in names:
        if name not in present:
            continue
        try:
            frame = gpd.read_file(gpkg, layer=name, engine="pyogrio")
        except Exception as exc:
            raise RenderError(f"cannot read layer {name!r} of {gpkg}: {exc}", hint=hint) from exc
        if "geometry" not in frame.columns or len(frame) == 0:
            continue
        frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
        if len(frame) == 0:
            continue
        frame = frame.set_crs("EPSG:4326") if frame.crs is None else frame.to_crs("EPSG:4326")
        layers[name] = frame.reset_index(drop=True)
    if "basin" not in layers:
        raise RenderError(f"{gpkg} has no basin outline (layer 'basin' is missing or empty)", hint=hint)
    return layers


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from a file, or None when it is missing, unreadable or not an object."""
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None
