"""`train` refuses what is not a dataset before Ultralytics starts (no traceback, no run folder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from plastic_hotspots.cli import main
from plastic_hotspots.training.datasets import check_dataset
from plastic_hotspots.training.errors import TrainingError


def _dataset(folder: Path, splits: tuple[str, ...] = ("train", "val")) -> Path:
    rng = np.random.default_rng(0)
    for split in splits:
        (folder / "images" / split).mkdir(parents=True)
        (folder / "labels" / split).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
            folder / "images" / split / "a.jpg"
        )
        (folder / "labels" / split / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (folder / "data.yaml").write_text("names: {0: bottle}\ntrain: images/train\nval: images/val\n")
    return folder


def test_a_whole_dataset_passes_as_a_folder_or_as_its_yaml(tmp_path: Path) -> None:
    folder = _dataset(tmp_path / "ds")
    assert check_dataset(folder) == folder / "data.yaml"
    assert check_dataset(folder / "data.yaml") == folder / "data.yaml"


def _no_folder(tmp_path: Path) -> Path:
    return tmp_path / "nothing"


def _a_json_file(tmp_path: Path) -> Path:
    (tmp_path / "export.json").write_text("[]")
    return tmp_path / "export.json"


def _photos_only(tmp_path: Path) -> Path:
    (tmp_path / "photos").mkdir()
    return tmp_path / "photos"


def _bad_yaml(tmp_path: Path) -> Path:
    folder = _dataset(tmp_path / "ds")
    (folder / "data.yaml").write_text("names: [unclosed\n")
    return folder


def _no_names(tmp_path: Path) -> Path:
    folder = _dataset(tmp_path / "ds")
    (folder / "data.yaml").write_text("train: images/train\nval: images/val\n")
    return folder


def _no_val(tmp_path: Path) -> Path:
    return _dataset(tmp_path / "ds", splits=("train",))


def _empty_train(tmp_path: Path) -> Path:
    folder = _dataset(tmp_path / "ds")
    (folder / "images" / "train" / "a.jpg").unlink()
    return folder


CASES = [
    (_no_folder, "was not found"),
    (_a_json_file, "is a file, not a dataset folder"),
    (_photos_only, "holds no data.yaml"),
    (_bad_yaml, "is not valid YAML"),
    (_no_names, "has no class names"),
    (_no_val, "the val images of .* are missing"),
    (_empty_train, "the train split of .* holds no images"),
]


@pytest.mark.parametrize(("make", "message"), CASES, ids=[c[0].__name__.strip("_") for c in CASES])
def test_what_is_not_a_dataset_is_refused_before_training_starts(
    make: object, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(TrainingError, match=message):
        check_dataset(folder)
    code = main(["train", str(folder), "--out", str(tmp_path / "runs"), "--epochs", "1", "--device", "cpu"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1
    assert "Traceback" not in err
    assert "How to fix:" in err
    assert not (tmp_path / "runs").exists()  # refused before Ultralytics made its run folder
