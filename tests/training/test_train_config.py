"""Training settings: file, command-line precedence, refused unknown keys, and the CLI reading them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_train_smoke import tiny_dataset

from plastic_hotspots.training.config import TrainConfig
from plastic_hotspots.training.errors import TrainingError


def test_file_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("epochs: 5\nimgsz: 320\ndevice: cpu\n")
    cfg = TrainConfig.from_file(path)
    assert (cfg.epochs, cfg.imgsz, cfg.device, cfg.batch) == (5, 320, "cpu", 16)
    assert cfg.override({"epochs": 2}).epochs == 2
    path.write_text("epochs: 5\nlearning_rate: 0.1\n")
    with pytest.raises(TrainingError, match="unknown settings learning_rate") as info:
        TrainConfig.from_file(path)
    assert "epochs" in info.value.hint
    with pytest.raises(TrainingError, match="epochs must be at least 1"):
        TrainConfig(epochs=0)


def test_cli_trains_from_a_config_file(tmp_path: Path) -> None:
    data = tiny_dataset(tmp_path / "ds")
    config = tmp_path / "train.yaml"
    config.write_text(
        f"start: yolo11n.yaml\nout: {tmp_path / 'runs'}\nepochs: 3\nimgsz: 64\nbatch: 2\ndevice: cpu\n"
    )
    env = {**os.environ, "PLASTIC_HOTSPOTS_CACHE": str(tmp_path / "cache")}
    cmd = [
        sys.executable,
        "-m",
        "plastic_hotspots.cli",
        "train",
        str(data),
        "--config",
        str(config),
        "--epochs",
        "1",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "best weights:" in proc.stdout
    results = (tmp_path / "runs" / "train" / "results.csv").read_text().splitlines()
    assert len(results) == 2  # header + 1 epoch: the option beat the file's 3


def test_resume_without_a_run_says_so(tmp_path: Path) -> None:
    from plastic_hotspots.detector.errors import ModelError
    from plastic_hotspots.detector.yolo import train_yolo

    with pytest.raises(ModelError, match="nothing to resume") as info:
        train_yolo(tmp_path / "d.yaml", "yolo11n.yaml", tmp_path / "runs", epochs=1, imgsz=64, batch=2,
                   device="cpu", resume=True, config_dir=tmp_path / "cfg")  # fmt: skip
    assert "without --resume" in info.value.hint
