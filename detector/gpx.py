"""GPS tracks (GPX 1.0 and 1.1): positions interpolated in time, and distance travelled.

A dashcam or action camera records video; a phone or logger records the track. A frame's position is
the track's position at the frame's time, interpolated linearly between the two neighbouring fixes.
Outside the track (beyond a small tolerance) or inside a long gap between fixes there is no position.
Times given as naive datetimes are taken as UTC, as GPX times are.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from plastic_hotspots.errors import ConfigError

FloatArray = npt.NDArray[np.float64]
EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)
_HINT = "export the track as GPX 1.1 with a <time> on every point (most GPS apps and loggers can)"


def haversine_m(
    lon1: npt.ArrayLike, lat1: npt.ArrayLike, lon2: npt.ArrayLike, lat2: npt.ArrayLike
) -> FloatArray:
    """Great-circle distance in metres between points given in degrees, element-wise.

    Args:
        lon1: Longitudes of the first points.
        lat1: Latitudes of the first points.
        lon2: Longitudes of the second points.
        lat2: Latitudes of the second points.

    Returns:
        Distances on a sphere of radius :data:`EARTH_RADIUS_M`, broadcast like the inputs.
    """
    p1, p2 = np.radians(np.asarray(lat1, np.float64)), np.radians(np.asarray(lat2, np.float64))
    dl = np.radians(np.asarray(lon2, np.float64) - np.asarray(lon1, np.float64))
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))), dtype=np.float64)


def _seconds(t: datetime | float) -> float:
    if isinstance(t, datetime):
        return (t if t.tzinfo is not None else t.replace(tzinfo=UTC)).timestamp()
    return float(t)


@dataclass(frozen=True, eq=False)  # arrays have no single truth value: tracks compare by identity
class Track:
    """A GPS track: fixes sorted by time, one per time stamp.

    Attributes:
        times_s: POSIX seconds, strictly increasing.
        lon: Longitudes, degrees.
        lat: Latitudes, degrees.
        ele: Elevations in metres (NaN where missing).
        name: The track's name, or the file's.
        tolerance_s: A time this close before the first or after the last fix takes that fix.
        max_gap_s: Between fixes further apart than this there is no position.
    """

    times_s: FloatArray
    lon: FloatArray
    lat: FloatArray
    ele: FloatArray
    name: str = ""
    tolerance_s: float = 2.0
    max_gap_s: float = 60.0
    _cumulative_m: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = self.times_s.shape
        if len(n) != 1 or any(a.shape != n for a in (self.lon, self.lat, self.ele)):
            raise ConfigError(
                f"track {self.name!r}: times, lon, lat and ele must be 1-D arrays of one length, got "
                f"{self.times_s.shape}, {self.lon.shape}, {self.lat.shape}, {self.ele.shape}",
                hint="build tracks with read_gpx()",
            )
        if self.times_s.size < 2:
            raise ConfigError(f"track {self.name!r} has fewer than 2 timed points", hint=_HINT)
        if not np.all(np.diff(self.times_s) > 0):
            raise ConfigError(
                f"track {self.name!r}: times are not strictly increasing", hint="build tracks with read_gpx()"
            )
        steps = haversine_m(self.lon[:-1], self.lat[:-1], self.lon[1:], self.lat[1:])
        object.__setattr__(self, "_cumulative_m", np.concatenate([[0.0], np.cumsum(steps)]))

    @property
    def start(self) -> datetime:
        """Time of the first fix (UTC)."""
        return datetime.fromtimestamp(float(self.times_s[0]), tz=UTC)

    @property
    def end(self) -> datetime:
        """Time of the last fix (UTC)."""
        return datetime.fromtimestamp(float(self.times_s[-1]), tz=UTC)

    @property
    def length_m(self) -> float:
        """Length of the whole track, metres."""
        return float(self._cumulative_m[-1])

    def _locate(
        self, times_s: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.intp], FloatArray, npt.NDArray[np.bool_]]:
        """Segment index ``i``, fraction ``f`` along it, and whether each time has a position.

        A time ``t`` lies at ``f`` of the way from fix ``i`` to fix ``i + 1``.
        """
        t = np.asarray(times_s, dtype=np.float64)
        times = self.times_s
        valid = (t >= times[0] - self.tolerance_s) & (t <= times[-1] + self.tolerance_s)
        clamped = np.clip(np.nan_to_num(t, nan=times[0]), times[0], times[-1])
        i = np.clip(np.searchsorted(times, clamped, side="right") - 1, 0, times.size - 2)
        span = times[i + 1] - times[i]
        frac = (clamped - times[i]) / span
        in_gap = (span > self.max_gap_s) & (frac > 0) & (frac < 1)
        return i, frac, valid & ~in_gap

    def positions_at(self, times_s: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Longitudes and latitudes at many POSIX times; NaN where there is no position.

        Args:
            times_s: POSIX seconds, any shape.

        Returns:
            ``(lon, lat)`` arrays shaped like ``times_s``.
        """
        i, f, ok = self._locate(times_s)
        lon = self.lon[i] + f * (self.lon[i + 1] - self.lon[i])
        lat = self.lat[i] + f * (self.lat[i + 1] - self.lat[i])
        return np.where(ok, lon, np.nan), np.where(ok, lat, np.nan)

    def distances_along_m(self, times_s: npt.ArrayLike) -> FloatArray:
        """Metres travelled from the track's start at many POSIX times; NaN where there is no position.

        Args:
            times_s: POSIX seconds, any shape.

        Returns:
            Distances shaped like ``times_s``.
        """
        i, f, ok = self._locate(times_s)
        cum = self._cumulative_m
        return np.where(ok, cum[i] + f * (cum[i + 1] - cum[i]), np.nan)

    def position_at(self, t: datetime | float) -> tuple[float, float] | None:
        """Position at one time.

        Args:
            t: An aware datetime, a naive one (taken as UTC), or POSIX seconds.

        Returns:
            ``(lon, lat)``, or ``None`` outside the track (beyond ``tolerance_s``) or inside a gap
            longer than ``max_gap_s``.
        """
        lon, lat = self.positions_at(_seconds(t))
        if math.isnan(lon):
            return None
        return float(lon), float(lat)

    def distance_along_m(self, t: datetime | float) -> float:
        """Metres travelled along the track from its start to the position at time ``t``.

        Distances are great-circle (haversine) between fixes, interpolated linearly in time within one.

        Args:
            t: An aware datetime, a naive one (taken as UTC), or POSIX seconds.

        Returns:
            The distance, or NaN where :meth:`position_at` gives ``None``.
        """
        return float(self.distances_along_m(_seconds(t)))


def _local(tag: str) -> str:
    """An element's name without its namespace (GPX 1.0 and 1.1 differ only there)."""
    return tag.rsplit("}", 1)[-1]


def _child_text(element: ET.Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name and child.text and child.text.strip():
            return child.text.strip()
    return None


def _parse_time(text: str) -> datetime:
    """An ISO-8601 time (``Z`` or an offset; none means UTC, as the GPX schema says)."""
    moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _track_name(root: ET.Element, path: Path) -> str:
    for kind in ("trk", "rte", "metadata"):
        for element in root:
            if _local(element.tag) == kind and (name := _child_text(element, "name")):
                return name
    return _child_text(root, "name") or path.stem  # GPX 1.0 puts the file's name on <gpx>


def read_gpx(path: Path) -> Track:
    """Read the timed points of a GPX 1.0 or 1.1 file.

    All ``trk/trkseg/trkpt`` of all tracks are read as one track (or ``rte/rtept`` when the file has
    no track points); points without a time are skipped, points are sorted by time and, of points
    sharing a time, the first in the file is kept.

    Args:
        path: The GPX file.

    Returns:
        The track.

    Raises:
        ConfigError: The file is missing, not GPX, has a point with a bad position or time, or has
            fewer than 2 distinct timed points.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError as exc:
        raise ConfigError(f"GPX file {path} does not exist", hint="check the --gpx path") from exc
    except ET.ParseError as exc:
        raise ConfigError(f"{path} is not a GPX file ({exc})", hint=_HINT) from exc
    if _local(root.tag) != "gpx":
        raise ConfigError(f"{path} is XML but not GPX (root element <{_local(root.tag)}>)", hint=_HINT)
    points = [el for el in root.iter() if _local(el.tag) == "trkpt"]
    if not points:
        points = [el for el in root.iter() if _local(el.tag) == "rtept"]
    rows: list[tuple[float, float, float, float]] = []
    for number, point in enumerate(points, start=1):
        time_text = _child_text(point, "time")
        if time_text is None:
            continue
        try:
            lat, lon = float(point.attrib["lat"]), float(point.attrib["lon"])
            seconds = _parse_time(time_text).timestamp()
        except (KeyError, ValueError) as exc:
            raise ConfigError(
                f"{path}: point {number} has a bad position or time ({exc})", hint=_HINT
            ) from exc
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ConfigError(
                f"{path}: point {number} at lat={lat}, lon={lon} is off the globe "
                "(lat must lie in [-90, 90], lon in [-180, 180])",
                hint=_HINT,
            )
        if lat == 0 and lon == 0:
            raise ConfigError(
                f"{path}: point {number} is at 0°, 0°, a receiver's default before it has a fix",
                hint="delete the points at lat=0, lon=0 from the track",
            )
        ele_text = _child_text(point, "ele")
        try:
            ele = float(ele_text) if ele_text is not None else math.nan
        except ValueError:
            ele = math.nan  # elevation is not used for positions; a bad one is only missing
        rows.append((seconds, lon, lat, ele))
    if len(rows) < 2:
        raise ConfigError(f"{path} has {len(rows)} timed track points; at least 2 are needed", hint=_HINT)
    data = np.array(sorted(rows, key=lambda r: r[0]), dtype=np.float64)  # stable: file order on ties
    keep = np.concatenate([[True], np.diff(data[:, 0]) > 0])
    data = data[keep]
    if data.shape[0] < 2:
        raise ConfigError(f"{path}: all timed track points have the same time", hint=_HINT)
    return Track(
        times_s=data[:, 0].copy(),
        lon=data[:, 1].copy(),
        lat=data[:, 2].copy(),
        ele=data[:, 3].copy(),
        name=_track_name(root, path),
    )
