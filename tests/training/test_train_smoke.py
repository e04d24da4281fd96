"""A 1-epoch training on a tiny generated dataset, with every network connection refused, then evaluate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from offline import no_network_site
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def tiny_dataset(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 2)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(n):
            img = rng.integers(0, 80, (96, 96, 3), dtype=np.uint8)
            img[20:50, 30:60] = (220, 230, 250)
            Image.fromarray(img).save(root / "images" / split / f"{i}.png")
            (root / "labels" / split / f"{i}.txt").write_text("0 0.46875 0.364583 0.3125 0.3125\n")
    (root / "data.yaml").write_text(yaml.safe_dump({"train": "images/train", "val": "images/val",
                                                     "names": {0: "bottle", 1: "can"}}))  # fmt: skip
    return root


def test_one_epoch_offline_then_evaluate(tmp_path: Path) -> None:
    data = tiny_dataset(tmp_path / "ds")
    no_network_site(tmp_path / "site")
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{ROOT}",
        "HOME": str(tmp_path / "home"),
        "PLASTIC_HOTSPOTS_CACHE": str(tmp_path / "cache"),
    }
    env.pop("YOLO_CONFIG_DIR", None)
    data_yaml, runs, cfg = str(data / "data.yaml"), str(tmp_path / "runs"), str(tmp_path / "cfg")
    script = f"""
from pathlib import Path
from plastic_hotspots.detector.yolo import train_yolo
best = train_yolo(Path({data_yaml!r}), "yolo11n.yaml", Path({runs!r}),
                  epochs=1, imgsz=64, batch=2, device="cpu", workers=0, config_dir=Path({cfg!r}))
print("BEST", best)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "network access attempted" not in proc.stderr
    best = Path(proc.stdout.split("BEST")[-1].strip())
    assert best.is_file()
    cmd = [sys.executable, "-m", "plastic_hotspots.cli", "evaluate", "--model", str(best),
           "--data", str(data), "--split", "val", "--imgsz", "64", "--json", "-"]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads(proc.stdout)
    assert {"map50", "map50_95", "per_class"} <= set(metrics)
    assert metrics["images"] == 2
    assert 0.0 <= metrics["map50"] <= 1.0
    assert "network access attempted" not in proc.stderr

    # Adding a class to the trained model: only its score rows move, every other weight and statistic
    # stays exactly the starting model's.
    for label in (data / "labels").rglob("*.txt"):
        label.write_text("1 0.46875 0.364583 0.3125 0.3125\n")
    script = f"""
from pathlib import Path
import torch
from plastic_hotspots.detector.yolo import train_yolo
new = train_yolo(Path({data_yaml!r}), Path({str(best)!r}), Path({runs!r}), name="can", epochs=1, imgsz=64,
                 batch=2, device="cpu", workers=0, config_dir=Path({cfg!r}), only_classes=["can"])
start = torch.load({str(best)!r}, weights_only=False)["model"].state_dict()
after = torch.load(new, weights_only=False)["model"].state_dict()
for key in start:
    if not torch.equal(start[key], after[key]):
        rows = (start[key] != after[key]).reshape(start[key].shape[0], -1).any(1).nonzero().flatten().tolist()
        print("CHANGED", key, rows)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    changed = [line.split(" ", 2)[1:] for line in proc.stdout.splitlines() if line.startswith("CHANGED")]
    assert changed, "the trained class's rows did not move"
    head = max(int(key.split(".")[1]) for key, _ in changed)
    for key, rows in changed:
        assert key.startswith(f"model.{head}.cv3."), key
        assert key.endswith((".weight", ".bias")), key
        assert rows == "[1]", (key, rows)
