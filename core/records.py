"""Records that cross a stage boundary.

Frozen, self-validating dataclasses: a record that exists is valid. Conventions:

* Boxes are pixel ``xyxy`` with the origin at the top-left corner of the image *after* its EXIF
  orientation has been applied.
* Positions stored or exchanged between stages are EPSG:4326 longitude/latitude, in that order.
* Grids are in one projected metric CRS per study area (:class:`GridSpec`), north-up, row 0 at the
  north edge.

This module imports numpy and the standard library only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np
import numpy.typing as npt

from plastic_hotspots.errors import RecordError

Scalar = str | int | float | bool | None
LayerKind = Literal["count", "continuous", "categorical"]
HotspotKind = Literal["leakage", "accumulation"]


def _finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise RecordError(f"{name} must be a finite number, got {value!r}")


@dataclass(frozen=True, slots=True)
class BBox:
    """An axis-aligned box in pixels, ``xyxy`` with top-left origin."""

    x1: float
    y1: float
    x2: float
    y2: float

    def __post_init__(self) -> None:
        for name in ("x1", "y1", "x2", "y2"):
            _finite(name, getattr(self, name))
        if not (self.x2 > self.x1 and self.y2 > self.y1):
            raise RecordError(
                f"a box needs x2 > x1 and y2 > y1, got ({self.x1}, {self.y1}, {self.x2}, {self.y2})"
            )

    @property
    def width(self) -> float:
        """Width in pixels."""
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        """Height in pixels."""
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        """Area in square pixels."""
        return self.width * self.height


@dataclass(frozen=True, slots=True)
class Detection:
    """One object found in one image by a detector (or drawn by a person)."""

    box: BBox
    class_name: str
    score: float

    def __post_init__(self) -> None:
        if not self.class_name:
            raise RecordError("a detection needs a class name")
        if not 0.0 <= self.score <= 1.0:
            raise RecordError(f"score must lie in [0, 1], got {self.score!r}")


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One image (photo, video frame or raster tile) and where it was taken."""

    path: str
    width: int
    height: int
    lon: float | None = None
    lat: float | None = None
    captured_at: datetime | None = None
    heading_deg: float | None = None
    altitude_m: float | None = None
    location_error_m: float | None = None
    source: str = "photo"

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise RecordError(f"image size must be positive, got {self.width}x{self.height}")
        if (self.lon is None) != (self.lat is None):
            raise RecordError("an image position needs both lon and lat, or neither")
        if self.lon is not None and self.lat is not None:
            check_lonlat(self.lon, self.lat)

    @property
    def has_position(self) -> bool:
        """Whether the image is geotagged."""
        return self.lon is not None


@dataclass(frozen=True, slots=True)
class GeoDetection:
    """A detection placed on the ground (EPSG:4326)."""

    detection: Detection
    image_path: str
    lon: float
    lat: float
    location_error_m: float

    def __post_init__(self) -> None:
        check_lonlat(self.lon, self.lat)
        if not (math.isfinite(self.location_error_m) and self.location_error_m >= 0):
            raise RecordError(f"location error must be >= 0 metres, got {self.location_error_m!r}")


def check_lonlat(lon: float, lat: float) -> None:
    """Raise :class:`RecordError` unless ``lon, lat`` is a possible EPSG:4326 position."""
    _finite("lon", lon)
    _finite("lat", lat)
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise RecordError(
            f"position ({lon}, {lat}) is outside lon [-180, 180], lat [-90, 90]; "
            "check that longitude comes first"
        )


@dataclass(frozen=True, slots=True)
class Provenance:
    """How a derived artefact was made: tool, version, parameters and inputs."""

    tool: str
    version: str
    created_at: str
    parameters: Mapping[str, Scalar] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    model: str | None = None

    def to_json(self) -> str:
        """Serialise to one JSON object (stable key order)."""
        return json.dumps(
            {
                "tool": self.tool,
                "version": self.version,
                "created_at": self.created_at,
                "parameters": dict(self.parameters),
                "inputs": list(self.inputs),
                "model": self.model,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Provenance:
        """Parse what :meth:`to_json` wrote."""
        raw = json.loads(text)
        return cls(
            tool=str(raw["tool"]),
            version=str(raw["version"]),
            created_at=str(raw["created_at"]),
            parameters=dict(raw.get("parameters", {})),
            inputs=tuple(str(i) for i in raw.get("inputs", [])),
            model=raw.get("model"),
        )


@dataclass(frozen=True, slots=True)
class GridSpec:
    """A north-up grid in a projected metric CRS.

    Args:
        crs: The CRS as an authority string, e.g. ``"EPSG:32648"``; must be metric.
        west: x of the west edge, metres.
        north: y of the north edge, metres.
        cell_size: Cell edge length, metres.
        width: Number of columns.
        height: Number of rows.
    """

    crs: str
    west: float
    north: float
    cell_size: float
    width: int
    height: int

    def __post_init__(self) -> None:
        if not self.crs:
            raise RecordError(
                "a grid needs a CRS",
            )
        _finite("west", self.west)
        _finite("north", self.north)
        if not (math.isfinite(self.cell_size) and self.cell_size > 0):
            raise RecordError(f"cell size must be a positive number of metres, got {self.cell_size!r}")
        if self.width <= 0 or self.height <= 0:
            raise RecordError(f"grid shape must be positive, got {self.height}x{self.width}")

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)``."""
        return (self.height, self.width)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` in grid CRS units."""
        return (
            self.west,
            self.north - self.height * self.cell_size,
            self.west + self.width * self.cell_size,
            self.north,
        )

    @property
    def transform(self) -> tuple[float, float, float, float, float, float]:
        """GDAL-style affine coefficients ``(a, b, c, d, e, f)`` as rasterio's ``Affine`` takes them."""
        return (self.cell_size, 0.0, self.west, 0.0, -self.cell_size, self.north)

    @property
    def cell_area_m2(self) -> float:
        """Area of one cell in square metres."""
        return self.cell_size * self.cell_size


@dataclass(frozen=True, slots=True, eq=False)
class Layer:
    """A raster on a :class:`GridSpec`.

    ``kind`` says how it may be resampled: ``count`` layers (people, items) sum-preserving,
    ``categorical`` ones nearest-neighbour, ``continuous`` ones by averaging.
    """

    name: str
    grid: GridSpec
    values: npt.NDArray[np.float64]
    unit: str
    kind: LayerKind = "continuous"
    description: str = ""

    def __post_init__(self) -> None:
        if self.values.shape != self.grid.shape:
            raise RecordError(
                f"layer {self.name!r} has shape {self.values.shape}, its grid expects {self.grid.shape}"
            )
        if self.kind not in ("count", "continuous", "categorical"):
            raise RecordError(f"layer kind must be count, continuous or categorical, got {self.kind!r}")


@dataclass(frozen=True, slots=True)
class Hotspot:
    """One ranked hotspot cell with the factor that drives it."""

    kind: HotspotKind
    rank: int
    row: int
    col: int
    lon: float
    lat: float
    value: float
    unit: str
    driver: str
    drivers: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise RecordError(f"ranks start at 1, got {self.rank}")
        check_lonlat(self.lon, self.lat)


@dataclass(frozen=True, slots=True, eq=False)
class HotspotGrid:
    """The hotspot model's result: its layers on one grid, the ranked hotspots and provenance."""

    grid: GridSpec
    layers: Mapping[str, Layer]
    hotspots: tuple[Hotspot, ...]
    provenance: Provenance

    def __post_init__(self) -> None:
        for key, layer in self.layers.items():
            if layer.grid != self.grid:
                raise RecordError(f"layer {key!r} is on another grid than the hotspot grid")
