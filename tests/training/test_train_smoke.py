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
