"""Ultralytics YOLO datasets from consensus labels, split by place and day, with a versioned manifest.

Photos taken at the same spot on the same day are near-duplicates: split file by file, they leak from
training into validation and flatter the model. Here every photo belongs to a *group* (a grid cell of
``group_m`` metres and the capture day; photos without a position form a group per folder) and whole
groups go to train, val or test. The class list is the project's taxonomy order, whatever order a
labelling tool exported. ``manifest.json`` names the exact data: a content hash of every image and label
file, the source export and the consensus parameters, and a dataset version derived from all of them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plastic_hotspots.annotations.convert import pixels_to_yolo
from plastic_hotspots.annotations.errors import AnnotationError
from plastic_hotspots.geoio import atomic_path
from plastic_hotspots.provenance import file_sha256, make_provenance
from plastic_hotspots.records import BBox

SPLITS = ("train", "val", "test")


@dataclass(frozen=True, slots=True)
class LabelledBox:
    """One accepted box of one photo."""

    task: str
    label: str
    box: BBox


@dataclass(frozen=True, slots=True)
class PhotoMeta:
    """What the split needs to know about a photo."""

    key: str
    path: Path
    width: int
    height: int
    lon: float | None = None
    lat: float | None = None
    captured_at: str | None = None
    group: str | None = (
        None  # a known near-duplicate group (e.g. from a dataset's manifest) overrides place+day
    )
    source: str | None = None  # the dataset it comes from: each source is split on its own


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """How to build the dataset.

    Attributes:
        fractions: Shares of photos for train, val and test (by whole groups).
        group_m: Side of the grid cell that groups photos by place, metres.
        seed: Salt of the group shuffle (change it for another, equally valid split).
    """

    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    group_m: float = 250.0
    seed: int = 0

    def __post_init__(self) -> None:
        if (
            len(self.fractions) != 3
            or any(f < 0 for f in self.fractions)
            or not math.isclose(sum(self.fractions), 1.0)
        ):
            raise AnnotationError(
                f"split fractions must be three non-negative numbers summing to 1, got {self.fractions}",
                hint="e.g. 0.8 0.1 0.1",
            )
        if self.group_m <= 0:
            raise AnnotationError(f"group size must be positive, got {self.group_m} m", hint="e.g. 250")


def group_of(photo: PhotoMeta, group_m: float) -> str:
    """The near-duplicate group of a photo: its given group, else its grid cell and capture day."""
    if photo.group:
        return f"given:{photo.group}"
    day = (photo.captured_at or "")[:10] or "undated"
    if photo.lat is None or photo.lon is None:
        return f"folder:{Path(photo.key).parent.as_posix()}|{day}"
    metres_per_deg_lat = 111_320.0
    metres_per_deg_lon = metres_per_deg_lat * max(math.cos(math.radians(photo.lat)), 0.01)
    row = math.floor(photo.lat * metres_per_deg_lat / group_m)
    col = math.floor(photo.lon * metres_per_deg_lon / group_m)
    return f"cell:{row}:{col}|{day}"


def assign_splits(photos: Sequence[PhotoMeta], spec: DatasetSpec) -> dict[str, str]:
    """Photo key -> split, moving whole groups; deterministic for a given seed and set of photos.

    Photos of different ``source`` datasets are split each on their own, to the same fractions: adding a
    dataset leaves the others' splits as they were (a model trained on one split of a dataset is never
    judged on its own training photos after another dataset joins).
    """
    by_source: dict[str, list[PhotoMeta]] = defaultdict(list)
    for photo in photos:
        by_source[photo.source or ""].append(photo)
    out: dict[str, str] = {}
    for part in by_source.values():
        out.update(_assign_source_splits(part, spec))
    return out


def _assign_source_splits(photos: Sequence[PhotoMeta], spec: DatasetSpec) -> dict[str, str]:
    """:func:`assign_splits` over photos of one source."""
    groups: dict[str, list[str]] = defaultdict(list)
    for photo in photos:
        groups[group_of(photo, spec.group_m)].append(photo.key)

    def order(name: str) -> str:
        return hashlib.sha256(f"{spec.seed}:{name}".encode()).hexdigest()

    total = len(photos)
    targets = [f * total for f in spec.fractions]
    filled = [0.0, 0.0, 0.0]
    out: dict[str, str] = {}
    for name in sorted(groups, key=order):
        # Put the group where it leaves the largest share of that split's target still unfilled.
        gaps = [(targets[i] - filled[i]) / targets[i] if targets[i] > 0 else -math.inf for i in range(3)]
        i = max(range(3), key=lambda k: gaps[k])
        filled[i] += len(groups[name])
        for key in groups[name]:
            out[key] = SPLITS[i]
    return out


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@dataclass(frozen=True, slots=True)
class DatasetSummary:
    """What was written."""

    root: Path
    version: str
    images: Mapping[str, int]
    boxes: Mapping[str, int]
    groups: Mapping[str, int]
    classes: tuple[str, ...] = field(default_factory=tuple)
    split_of: Mapping[str, str] = field(default_factory=dict)


def write_dataset(
    out: Path,
    photos: Sequence[PhotoMeta],
    boxes: Iterable[LabelledBox],
    classes: Sequence[str],
    spec: DatasetSpec | None = None,
    *,
    source: Mapping[str, Any] | None = None,
    fixed_splits: Mapping[str, str] | None = None,
) -> DatasetSummary:
    """Write ``images/<split>/``, ``labels/<split>/``, ``data.yaml`` and ``manifest.json`` under ``out``.

    Photos with no accepted box are kept as background images (an empty label file). ``fixed_splits``
    (photo key -> split) wins over the drawn split, e.g. to keep a held-out set out of every later training.

    Raises:
        AnnotationError: A box has a label outside ``classes``, or a photo file is missing.
    """
    spec = spec or DatasetSpec()
    index = {name: i for i, name in enumerate(classes)}
    by_task: dict[str, list[LabelledBox]] = defaultdict(list)
    for b in boxes:
        if b.label not in index:
            raise AnnotationError(f"label {b.label!r} is not in the class list", hint="check the taxonomy")
        by_task[b.task].append(b)
    splits = assign_splits(photos, spec)
    for key, split in (fixed_splits or {}).items():
        if key in splits:
            splits[key] = split
    if out.exists():
        shutil.rmtree(out)
    files: dict[str, str] = {}
    counts = dict.fromkeys(SPLITS, 0)
    box_counts = dict.fromkeys(SPLITS, 0)
    for photo in sorted(photos, key=lambda p: p.key):
        if not photo.path.is_file():
            raise AnnotationError(
                f"photo {photo.path} is missing", hint="pass the folder the photos were pushed from"
            )
        split = splits[photo.key]
        stem = photo.key.replace("/", "__").rsplit(".", 1)[0]
        image = out / "images" / split / (stem + photo.path.suffix.lower())
        label = out / "labels" / split / (stem + ".txt")
        _link_or_copy(photo.path, image)
        lines = []
        for b in sorted(by_task.get(photo.key, []), key=lambda b: (index[b.label], b.box.x1, b.box.y1)):
            cx, cy, w, h = pixels_to_yolo(b.box, photo.width, photo.height)
            lines.append(f"{index[b.label]} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        counts[split] += 1
        box_counts[split] += len(lines)
        files[image.relative_to(out).as_posix()] = file_sha256(image)
        files[label.relative_to(out).as_posix()] = file_sha256(label)
    version = hashlib.sha256(
        json.dumps({"files": files, "classes": list(classes)}, sort_keys=True).encode()
    ).hexdigest()[:16]
    data_yaml = {  # no `path`: Ultralytics then reads the splits beside this file, wherever it is moved
        "train": "images/train",
        "val": "images/val",
        "test": "images/test",
        "names": dict(enumerate(classes)),
    }
    import yaml

    with atomic_path(out / "data.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(data_yaml, sort_keys=False), encoding="utf-8")
    group_counts: dict[str, set[str]] = {s: set() for s in SPLITS}
    for photo in photos:
        group_counts[splits[photo.key]].add(group_of(photo, spec.group_m))
    provenance = make_provenance(
        "plastic_hotspots.annotations.dataset",
        parameters={
            "fractions": ",".join(map(str, spec.fractions)),
            "group_m": spec.group_m,
            "seed": spec.seed,
        },
        inputs=[str(source.get("path"))] if source and source.get("path") else [],
    )
    manifest = {
        "version": version,
        "classes": list(classes),
        "splits": {
            s: {"images": counts[s], "boxes": box_counts[s], "groups": len(group_counts[s])} for s in SPLITS
        },
        "split_rule": f"whole groups of {spec.group_m:g} m grid cell and capture day, seed {spec.seed}",
        "source": dict(source or {}),
        "provenance": json.loads(provenance.to_json()),
        "files": files,
    }
    with atomic_path(out / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=False), encoding="utf-8")
    return DatasetSummary(
        out, version, counts, box_counts, {s: len(g) for s, g in group_counts.items()}, tuple(classes),
        {photo.key: splits[photo.key] for photo in photos},
    )  # fmt: skip


def read_yolo_folder(
    folder: Path, class_map: Mapping[str, str], *, groups: Mapping[str, str] | None = None
) -> tuple[list[PhotoMeta], list[LabelledBox]]:
    """Photos and boxes of a plain YOLO folder (``images/``, ``labels/``, ``data.yaml`` with names).

    Classes are matched by *name*: ``class_map`` maps the folder's names to the project's; a box of a
    class that is not mapped is an error (map it, or map it to ``""`` to drop it knowingly).
    ``groups`` gives known near-duplicate groups by image file name.
    """
    import yaml
    from PIL import Image

    meta = yaml.safe_load((folder / "data.yaml").read_text(encoding="utf-8"))
    names = meta["names"]
    names = dict(enumerate(names)) if isinstance(names, list) else {int(k): v for k, v in names.items()}
    photos: list[PhotoMeta] = []
    boxes: list[LabelledBox] = []
    for image in sorted((folder / "images").iterdir()):
        if image.suffix.lower() not in {".jpg", ".jpeg", ".png"}:
            continue
        with Image.open(image) as img:
            width, height = img.size
        photos.append(PhotoMeta(image.name, image, width, height, group=(groups or {}).get(image.name)))
        label_file = folder / "labels" / (image.stem + ".txt")
        lines = label_file.read_text(encoding="utf-8").splitlines() if label_file.is_file() else []
        for line in lines:
            if not line.strip():
                continue
            cls, cx, cy, w, h = line.split()[:5]
            name = str(names[int(cls)])
            if name not in class_map:
                raise AnnotationError(
                    f"class {name!r} of {folder} has no mapping", hint="add it to the class map"
                )
            target = class_map[name]
            if not target:
                continue
            box = BBox(
                max((float(cx) - float(w) / 2) * width, 0.0),
                max((float(cy) - float(h) / 2) * height, 0.0),
                min((float(cx) + float(w) / 2) * width, float(width)),
                min((float(cy) + float(h) / 2) * height, float(height)),
            )
            boxes.append(LabelledBox(image.name, target, box))
    return photos, boxes
