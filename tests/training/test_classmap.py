"""Class maps: dataset classes renamed onto the taxonomy, dropped with their boxes, or refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plastic_hotspots.training.classmap import ClassMap, resolve
from plastic_hotspots.training.errors import TrainingError
from plastic_hotspots.training.evaluate import Truth, apply_class_map

DATASET = ["Plastic bag", "bottle", "Rubber ball"]


def test_rename_drop_and_pass_through() -> None:
    resolved = resolve(DATASET, ClassMap({"Plastic bag": "bag_film", "Rubber ball": None}))
    assert resolved == {"Plastic bag": "bag_film", "bottle": "bottle", "Rubber ball": None}
    truths = [
        Truth(
            Path("a.jpg"), np.arange(12, dtype=float).reshape(3, 4), ("Plastic bag", "Rubber ball", "bottle")
        ),
        Truth(Path("b.jpg"), np.zeros((1, 4)), ("Rubber ball",)),
    ]
    mapped, dropped = apply_class_map(truths, resolved)
    assert dropped == {"Rubber ball": 2}
    assert mapped[0].names == ("bag_film", "bottle")
    np.testing.assert_array_equal(mapped[0].boxes, truths[0].boxes[[0, 2]])
    assert mapped[1].names == ()
    assert mapped[1].boxes.shape == (0, 4)


def test_unknown_classes_are_named_and_the_class_map_suggested() -> None:
    with pytest.raises(TrainingError, match="Plastic bag, Rubber ball") as err:
        resolve(DATASET)
    assert "--class-map" in (err.value.hint or "")
    with pytest.raises(TrainingError, match="unknown classes: plastic"):
        resolve(DATASET, ClassMap({"Plastic bag": "plastic", "Rubber ball": None}))
    with pytest.raises(TrainingError, match="does not have: Tyre"):
        resolve(DATASET, ClassMap({"Tyre": None}))
    # the model's own class names are known too
    assert resolve(["bottle", "cup"], model_classes=["cup"]) == {"bottle": "bottle", "cup": "cup"}


def test_agnostic_makes_one_class_and_still_drops() -> None:
    resolved = resolve(DATASET, ClassMap({"Rubber ball": None}), agnostic=True)
    assert resolved == {"Plastic bag": "litter", "bottle": "litter", "Rubber ball": None}


def test_class_map_file(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("Plastic bag: bag_film\nRubber ball: null\n", encoding="utf-8")
    assert ClassMap.from_file(path).mapping == {"Plastic bag": "bag_film", "Rubber ball": None}
    path.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(TrainingError, match="not a mapping"):
        ClassMap.from_file(path)
    with pytest.raises(TrainingError, match="does not exist"):
        ClassMap.from_file(tmp_path / "missing.yaml")
