"""YOLO datasets: whole place-and-day groups per split, project class order, a versioned manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from plastic_hotspots.annotations.dataset import (
    DatasetSpec,
    LabelledBox,
    PhotoMeta,
    assign_splits,
    group_of,
    write_dataset,
)
from plastic_hotspots.annotations.errors import AnnotationError
from plastic_hotspots.annotations.taxonomy import CLASS_NAMES
from plastic_hotspots.records import BBox


def survey(folder: Path, n_places: int = 12, per_place: int = 5) -> list[PhotoMeta]:
    photos = []
    rng = np.random.default_rng(0)
    for place in range(n_places):
        for k in range(per_place):  # near-duplicates: same spot (within 20 m), same day
            key = f"site{place:02d}/img{k}.png"
            path = folder / key
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(path)
            day = f"2026-03-{1 + place % 3:02d}T08:00:00+07:00"
            lon, lat = 100.0 + place * 0.01 + k * 1e-4, 20.0 + k * 1e-4
            photos.append(PhotoMeta(key, path, 50, 40, lon=lon, lat=lat, captured_at=day))
    return photos


def test_groups_are_never_split(tmp_path: Path) -> None:
    photos = survey(tmp_path)
    splits = assign_splits(photos, DatasetSpec())
    by_group: dict[str, set[str]] = {}
    for p in photos:
        by_group.setdefault(group_of(p, 250.0), set()).add(splits[p.key])
    assert len(by_group) == 12
    assert all(len(s) == 1 for s in by_group.values())
    counts = {s: sum(v == s for v in splits.values()) for s in ("train", "val", "test")}
    assert counts["train"] >= 40
    assert counts["val"] >= 5
    assert counts["test"] >= 5
    assert assign_splits(list(reversed(photos)), DatasetSpec()) == splits  # input order does not matter
    assert assign_splits(photos, DatasetSpec(seed=1)) != splits


def test_write_dataset(tmp_path: Path) -> None:
    photos = survey(tmp_path / "photos")
    boxes = [LabelledBox(photos[0].key, "pile", BBox(0, 0, 50, 40)),
             LabelledBox(photos[0].key, "bottle", BBox(10, 10, 20, 30))]  # fmt: skip
    summary = write_dataset(tmp_path / "ds", photos, boxes, CLASS_NAMES, source={"path": "export.json"})
    data = yaml.safe_load((tmp_path / "ds" / "data.yaml").read_text())
    assert list(data["names"].values()) == list(CLASS_NAMES)  # taxonomy order, not alphabetical
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["version"] == summary.version
    assert sum(v["images"] for v in manifest["splits"].values()) == 60
    assert len(manifest["files"]) == 120
    split = next(
        s for s in ("train", "val", "test") if (tmp_path / "ds" / "labels" / s / "site00__img0.txt").exists()
    )
    lines = (tmp_path / "ds" / "labels" / split / "site00__img0.txt").read_text().splitlines()
    assert lines == [
        "0 0.300000 0.500000 0.200000 0.500000",
        f"{CLASS_NAMES.index('pile')} 0.500000 0.500000 1.000000 1.000000",
    ]
    again = write_dataset(tmp_path / "ds", photos, boxes, CLASS_NAMES)
    assert again.version == summary.version  # same data, same version
    changed = write_dataset(tmp_path / "ds", photos, boxes[:1], CLASS_NAMES)
    assert changed.version != summary.version
    with pytest.raises(AnnotationError, match="not in the class list"):
        write_dataset(
            tmp_path / "ds", photos, [LabelledBox(photos[0].key, "tyre", BBox(0, 0, 5, 5))], CLASS_NAMES
        )
