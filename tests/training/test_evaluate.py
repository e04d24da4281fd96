"""Evaluation: COCO-style AP, classes matched by name, and the shipped model on its held-out split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from plastic_hotspots.training.evaluate import (
    Truth,
    average_precision,
    evaluate,
    evaluate_predictions,
    read_folder,
)

BOXES = np.array([[10, 10, 50, 50], [60, 60, 90, 95], [5, 70, 20, 90]], dtype=float)
NAMES = ("bottle", "can", "bottle")


def test_perfect_and_imperfect_predictions() -> None:
    truths = [Truth(Path("a.jpg"), BOXES, NAMES)]
    perfect = [(BOXES.copy(), np.array([0.9, 0.8, 0.7]), NAMES)]
    result = evaluate_predictions(truths, perfect, ["bottle", "can"], ["can", "bottle"])
    assert result.map50 == pytest.approx(1.0)
    assert result.map50_95 == pytest.approx(1.0)
    assert (result.precision, result.recall) == (1.0, 1.0)
    # One bottle missed, one false alarm ranked first.
    preds = [(np.array([[200, 200, 240, 240], [10, 10, 50, 50], [60, 60, 90, 95]], dtype=float),
              np.array([0.95, 0.9, 0.8]), ("bottle", "bottle", "can"))]  # fmt: skip
    result = evaluate_predictions(truths, preds, ["bottle", "can"], ["bottle", "can"])
    assert result.per_class["can"]["map50"] == pytest.approx(1.0)
    expected = average_precision(np.array([False, True]), np.array([0.95, 0.9]), 2)
    assert result.per_class["bottle"]["map50"] == pytest.approx(expected)
    assert result.recall == pytest.approx(2 / 3)
    assert result.per_class["bottle"]["precision"] == pytest.approx(0.5)
    assert result.per_class["bottle"]["recall"] == pytest.approx(0.5)
    assert result.per_class["can"]["recall"] == pytest.approx(1.0)
    assert result.precision == pytest.approx(2 / 3)
    assert result.confusion["bottle"]["background"] == 1
    assert result.confusion["background"]["bottle"] == 1
    assert set(result.recall_by_size) == {"small", "medium", "large"}


def test_average_precision_known_values() -> None:
    assert average_precision(np.array([True, True]), np.array([0.9, 0.8]), 2) == pytest.approx(1.0)
    assert average_precision(np.array([True]), np.array([0.9]), 2) == pytest.approx(51 / 101)
    assert average_precision(np.array([], dtype=bool), np.array([]), 3) == 0.0


def _folder(root: Path, names: list[str], boxes: list[tuple[str, float, float, float, float]]) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    Image.fromarray(np.zeros((100, 200, 3), dtype=np.uint8)).save(root / "images" / "x.png")
    lines = [f"{names.index(n)} {cx} {cy} {w} {h}" for n, cx, cy, w, h in boxes]
    (root / "labels" / "x.txt").write_text("\n".join(lines))
    (root / "data.yaml").write_text(yaml.safe_dump({"names": dict(enumerate(names))}))
    return root


def test_class_ids_in_another_order_match_by_name(tmp_path: Path) -> None:
    boxes = [("can", 0.5, 0.5, 0.2, 0.4), ("bottle", 0.1, 0.2, 0.1, 0.2)]
    a, names_a = read_folder(_folder(tmp_path / "a", ["bottle", "can"], boxes))
    b, names_b = read_folder(_folder(tmp_path / "b", ["can", "glass", "bottle"], boxes))
    assert a[0].names == b[0].names == ("can", "bottle")
    np.testing.assert_allclose(a[0].boxes, b[0].boxes)
    preds = [(a[0].boxes.copy(), np.array([0.9, 0.8]), ("can", "bottle"))]
    model_classes = ["bottle", "cup", "can"]  # the model's own order and classes
    ra = evaluate_predictions(a, preds, names_a, model_classes)
    rb = evaluate_predictions(b, preds, names_b, model_classes)
    assert ra.map50 == rb.map50 == pytest.approx(1.0)
    assert rb.unmatched_classes == {"only_in_data": ["glass"], "only_in_model": ["cup"]}


@pytest.mark.realdata
def test_shipped_model_on_its_held_out_split(shared_data: Path, tmp_path: Path) -> None:
    from plastic_hotspots.training.baseline import prepare

    prepare(shared_data, tmp_path / "ds")
    result = evaluate(
        Path(__file__).resolve().parents[2] / "detector" / "models" / "litter-baseline.pt",
        tmp_path / "ds", split="test", out=tmp_path / "eval",
    )  # fmt: skip
    print(f"shipped model, held-out test split: mAP50 {result.map50:.3f}, mAP50-95 {result.map50_95:.3f}")
    assert result.images == 36
    assert result.map50 >= 0.8
    assert (tmp_path / "eval" / "confusion.png").is_file()
    assert (tmp_path / "eval" / "metrics.json").is_file()
