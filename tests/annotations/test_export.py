"""Malformed Label Studio exports: every bad region is reported with its reason, the rest is kept."""

from __future__ import annotations

from typing import Any

from plastic_hotspots.annotations.export import read_export
from plastic_hotspots.annotations.taxonomy import CLASS_NAMES


def region(rid: str, x: Any = 10, y: Any = 10, w: Any = 20, h: Any = 20, label: str | None = "bottle",
           size: bool = True) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {"id": rid, "type": "rectanglelabels", "from_name": "label", "to_name": "image",
                           "value": {"x": x, "y": y, "width": w, "height": h,
                                     "rectanglelabels": [label] if label else []}}  # fmt: skip
    if size:
        out |= {"original_width": 200, "original_height": 100}
    return out


def test_every_problem_is_reported_and_good_regions_kept() -> None:
    tasks = [
        {"id": 1, "data": {"key": "a.jpg", "width": 200, "height": 100}, "annotations": [
            {"completed_by": {"id": 7, "email": "ana@example.org"}, "result": [
                region("ok"),
                region("no_size_but_task_has_it", size=False),
                region("zero", w=0),
                region("outside", x=120, w=10),
                region("clipped", x=90, w=20),
                region("tyre", label="tyre"),
                region("nolabel", label=None),
                region("text", x="left"),
                {"id": "choice", "type": "choices", "value": {"choices": ["x"]}},
            ]},
            {"completed_by": 8, "was_cancelled": True, "result": []},
            {"completed_by": 9, "result": []},
        ]},
        {"id": 2, "data": {"key": "b.jpg"}, "annotations": [
            {"completed_by": 7, "result": [region("no_size_anywhere", size=False)]},
        ]},
        {"id": 3, "data": {"key": "gold.jpg", "width": 200, "height": 100}, "annotations": [
            {"completed_by": 1, "ground_truth": True, "result": [region("expert", label="can")]},
            {"completed_by": 9, "result": [region("vol", label="can")]},
        ]},
    ]  # fmt: skip
    contents = read_export(tasks, CLASS_NAMES)
    got = sorted((p.task, p.region, p.kind) for p in contents.problems)
    assert got == [
        ("a.jpg", "", "cancelled"),
        ("a.jpg", "clipped", "clipped"),
        ("a.jpg", "nolabel", "no_label"),
        ("a.jpg", "outside", "out_of_image"),
        ("a.jpg", "text", "malformed"),
        ("a.jpg", "tyre", "unknown_label"),
        ("a.jpg", "zero", "zero_size"),
        ("b.jpg", "no_size_anywhere", "missing_size"),
    ]
    kept = sorted((b.task, b.annotator, b.box.x1, b.box.x2) for b in contents.boxes)
    assert kept == [
        ("a.jpg", "ana@example.org", 20.0, 60.0),
        ("a.jpg", "ana@example.org", 20.0, 60.0),  # size from the task's data
        ("a.jpg", "ana@example.org", 180.0, 200.0),  # clipped to the image
        ("gold.jpg", "9", 20.0, 60.0),
    ]
    assert sorted((s.task, s.annotator) for s in contents.submissions) == [
        ("a.jpg", "9"), ("a.jpg", "ana@example.org"), ("b.jpg", "7"), ("gold.jpg", "9"),
    ]  # fmt: skip
    assert [(lbl, b.x1) for lbl, b in contents.gold["gold.jpg"]] == [("can", 20.0)]


def test_empty_and_odd_exports() -> None:
    assert read_export([], CLASS_NAMES).boxes == ()
    contents = read_export([{"id": 5, "data": {}, "annotations": None}], CLASS_NAMES)
    assert list(contents.tasks) == ["5"]
    odd = read_export(["not a task", {"id": 6, "data": {"key": "c"}, "annotations": [3]}], CLASS_NAMES)  # type: ignore[list-item]
    assert [(p.task, p.kind) for p in odd.problems] == [("#0", "malformed"), ("c", "malformed")]
