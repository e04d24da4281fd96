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


def _task(key: str, annotations: list[dict[str, object]]) -> dict[str, object]:
    return {"id": key, "data": {"key": key, "width": 50, "height": 40}, "annotations": annotations}


def test_only_labelled_photos_enter_the_dataset(tmp_path: Path) -> None:
    """A photo nobody has labelled is not a photo without litter: it is left out, not kept as background."""
    from plastic_hotspots.annotations.results import dataset_from_consensus, run_consensus

    photos = survey(tmp_path / "photos", n_places=2, per_place=2)
    box = {"id": "r1", "type": "rectanglelabels", "from_name": "label", "to_name": "image",
           "original_width": 50, "original_height": 40,
           "value": {"x": 20, "y": 25, "width": 20, "height": 50, "rectanglelabels": ["bottle"]}}  # fmt: skip
    tasks = [
        _task(photos[0].key, [{"completed_by": 1, "result": [box]}]),  # a bottle
        _task(photos[1].key, [{"completed_by": 1, "result": []}]),  # looked at: nothing there
        _task(photos[2].key, [{"completed_by": 1, "was_cancelled": True, "result": []}]),  # skipped
        _task(photos[3].key, []),  # nobody has opened it yet
    ]
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    run_consensus(export, tmp_path / "consensus")
    by_key = {p.key: p.path for p in photos}
    summary = dataset_from_consensus(
        tmp_path / "consensus", tasks, lambda t: by_key[str(t["id"])], tmp_path / "ds"
    )
    assert sum(summary.images.values()) == 2
    assert sum(summary.boxes.values()) == 1
    names = sorted(p.name for p in (tmp_path / "ds" / "labels").rglob("*.txt"))
    assert names == ["site00__img0.txt", "site00__img1.txt"]

    from plastic_hotspots.annotations.errors import ExportError

    with pytest.raises(ExportError, match="no labelled photo"):
        dataset_from_consensus(
            tmp_path / "consensus", tasks[2:], lambda t: by_key[str(t["id"])], tmp_path / "d2"
        )
    with pytest.raises(ExportError, match=r"holds no consensus\.parquet"):
        dataset_from_consensus(tmp_path / "nothing", tasks, lambda t: by_key[str(t["id"])], tmp_path / "d3")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "was not found"),
        ("", "is empty"),
        ("[unclosed", "is not valid JSON"),
        ('{"tasks": []}', "holds a JSON object, not a list of tasks"),
        ("folder", "is a folder, not an export file"),
    ],
)
def test_an_export_that_is_not_one_is_refused_with_the_file_named(
    content: str | None, message: str, tmp_path: Path
) -> None:
    from plastic_hotspots.annotations.errors import ExportError
    from plastic_hotspots.annotations.export import load_export

    path = tmp_path / "export.json"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ExportError, match=message) as info:
        load_export(path)
    assert str(path) in str(info.value)
    assert "annotate pull" in (info.value.hint or "")
