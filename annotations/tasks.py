"""Labelling tasks from survey photos, and model pre-labels that order the volunteers' queue.

A task's data holds the photo (a URL Label Studio can show), a stable ``key`` (the photo's path relative
to the survey folder, so pushing twice adds nothing), its geotag and capture time, the image size (a
fallback when a region lacks ``original_width``) and a ``place`` line shown under the photo.

Pre-labels come from a ``detect`` run (``detections.parquet``). Each task's prediction carries a score
that is the model's *certainty* about the photo; with Label Studio's uncertainty sampling, volunteers get
the least certain photos first, which are the ones that teach the next model most.
"""

from __future__ import annotations

import os
import stat
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plastic_hotspots.annotations.convert import ls_region
from plastic_hotspots.annotations.errors import AnnotationError
from plastic_hotspots.errors import GeotagError
from plastic_hotspots.records import BBox

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp"})
LOCAL_FILES_PREFIX = "/data/local-files/?d="


@dataclass(frozen=True, slots=True)
class PhotoTask:
    """One photo to label."""

    key: str
    path: Path
    width: int
    height: int
    lon: float | None
    lat: float | None
    captured_at: str | None

    def data(self, image_url: str) -> dict[str, Any]:
        """The task's data for Label Studio."""
        where = (
            f"{self.lat:.5f}, {self.lon:.5f}"
            if self.lat is not None and self.lon is not None
            else "no position"
        )
        when = f" · {self.captured_at}" if self.captured_at else ""
        return {
            "image": image_url,
            "key": self.key,
            "place": f"{where}{when} · {self.key}",
            "lon": self.lon,
            "lat": self.lat,
            "captured_at": self.captured_at,
            "source": "photo",
            "width": self.width,
            "height": self.height,
        }


def vet_photo(path: Path, folder: Path) -> str | None:
    """Why ``path`` may not be shown from the photo folder ``folder`` (resolved), or None when it may.

    A photo may be shown when it is a regular file whose real path (links followed) lies inside the
    folder: a link to ``/etc/passwd`` or to a server's key named ``x.jpg`` is refused.
    """
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return "is a broken link" if path.is_symlink() else "cannot be read"
    if not real.is_relative_to(folder):
        return "links outside the photo folder"
    if not stat.S_ISREG(real.stat().st_mode):
        return "is not a regular file"
    return None


def _candidates(folder: Path) -> list[Path]:
    """Files with a photo suffix under ``folder``, hidden files and folders (``.name``) left out."""
    out: list[Path] = []
    for top, dirs, files in os.walk(folder):  # links to folders are not entered
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out.extend(
            Path(top) / f for f in files if not f.startswith(".") and Path(f).suffix.lower() in PHOTO_SUFFIXES
        )
    return sorted(out)


def scan_photos(folder: Path, refused: list[tuple[str, str]] | None = None) -> list[PhotoTask]:
    """Every photo under ``folder`` with its upright size, geotag and time.

    Hidden files and folders (names starting with ``.``) are not searched. Files that resolve outside
    the folder or are not regular files are never opened: their ``(key, reason)`` go to ``refused``.
    Files that are not images are skipped.
    """
    from PIL import Image, UnidentifiedImageError

    from plastic_hotspots.exif import read_exif

    folder = Path(folder)
    if not folder.is_dir():
        raise AnnotationError(f"{folder} is not a folder", hint="pass the folder of survey photos")
    real_folder = folder.resolve()
    out = []
    for path in _candidates(folder):
        key = path.relative_to(folder).as_posix()
        why = vet_photo(path, real_folder)
        if why is not None:
            if refused is not None:
                refused.append((key, why))
            continue
        try:
            with Image.open(path) as img:
                width, height = img.size
                try:
                    exif = read_exif(img)
                except GeotagError:
                    exif = None
        except (UnidentifiedImageError, OSError):
            continue
        if exif is not None and exif.orientation in {5, 6, 7, 8}:
            width, height = height, width
        out.append(
            PhotoTask(
                key=key,
                path=path,
                width=width,
                height=height,
                lon=exif.lon if exif else None,
                lat=exif.lat if exif else None,
                captured_at=exif.captured_at.isoformat() if exif and exif.captured_at else None,
            )
        )
    return out


def image_url(
    path: Path, *, document_root: Path | None = None, url_prefix: str | None = None, key: str = ""
) -> str:
    """How Label Studio reaches a photo: under a URL prefix (remote), or as a local file (same machine)."""
    if url_prefix:
        return url_prefix.rstrip("/") + "/" + urllib.parse.quote(key)
    if document_root is None:
        raise AnnotationError(
            "photos need a way to reach Label Studio",
            hint="pass --document-root (the server's LOCAL_FILES_DOCUMENT_ROOT) or --url-prefix https://...",
        )
    try:
        relative = Path(path).resolve().relative_to(Path(document_root).resolve())
    except ValueError as exc:
        raise AnnotationError(
            f"{path} is not under the document root {document_root}",
            hint="put the photos under the server's LOCAL_FILES_DOCUMENT_ROOT",
        ) from exc
    return LOCAL_FILES_PREFIX + urllib.parse.quote(relative.as_posix())


def uncertainty(scores: Sequence[float]) -> float:
    """How unsure the model is about a photo, in [0, 1].

    The largest, over its boxes, of ``1 - |2 s - 1|``: a box scored 0.5 is a coin toss (1), boxes near 0
    or 1 are sure (0). A photo with no box at all scores 0.5: the model saw nothing, but a low threshold
    or a missed item is common, so it sits mid-queue.
    """
    if not scores:
        return 0.5
    return max(1.0 - abs(2.0 * float(s) - 1.0) for s in scores)


@dataclass(frozen=True, slots=True)
class Prelabel:
    """A task's pre-annotation: Label Studio regions and the prediction's score (certainty)."""

    key: str
    result: list[dict[str, Any]]
    score: float
    uncertainty: float


def prelabels(
    detections: Iterable[Mapping[str, Any]], sizes: Mapping[str, tuple[int, int]], classes: Iterable[str]
) -> list[Prelabel]:
    """Pre-labels per task key from detection rows (``key``, ``class_name``, ``score``, ``x1..y2``).

    Tasks in ``sizes`` without any detection get an empty pre-label (the model saw nothing); boxes of
    classes outside the project's taxonomy are left out.
    """
    known = set(classes)
    by_key: dict[str, list[Mapping[str, Any]]] = {k: [] for k in sizes}
    for row in detections:
        key = str(row["key"])
        if key in by_key and str(row["class_name"]) in known:
            by_key[key].append(row)
    out = []
    for key in sorted(by_key):
        width, height = sizes[key]
        rows = by_key[key]
        result = [
            ls_region(
                BBox(float(row["x1"]), float(row["y1"]), float(row["x2"]), float(row["y2"])),
                str(row["class_name"]), width, height, f"p{n}", float(row["score"]),
            )
            for n, row in enumerate(rows)
        ]  # fmt: skip
        u = uncertainty([float(r["score"]) for r in rows])
        out.append(Prelabel(key, result, score=round(1.0 - u, 6), uncertainty=u))
    return out


def key_for(path: str, root: Path) -> str:
    """The task key of a detected image path: relative to the survey folder ``root``."""
    p = Path(path)
    try:
        return p.resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return p.as_posix()
