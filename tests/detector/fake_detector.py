"""A deterministic stand-in for the YOLO detector, for testing the batch runner without a model.

It "detects" one box per bright square it finds on a coarse grid of the image, so outputs depend on
image content only. ``delay_s`` slows it down so a test can kill a run half-way. ``spec()`` lets Dask
workers build their own (this folder is on their ``sys.path`` as on the test process's).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from PIL import Image

from plastic_hotspots.records import BBox, Detection

NAMES = {0: "bottle", 1: "bag_film"}


class FakeDetector:
    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.calls = 0

    @property
    def names(self) -> dict[int, str]:
        return NAMES

    @property
    def model_version(self) -> str:
        return "fake-0001"

    def spec(self) -> FakeSpec:
        return FakeSpec(self.delay_s)

    def predict(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[list[Detection]]:
        self.calls += 1
        out = []
        for img in images:
            if self.delay_s:
                time.sleep(self.delay_s)
            h, w = img.shape[:2]
            dets = []
            step = 32
            for y in range(0, h - step + 1, step):
                for x in range(0, w - step + 1, step):
                    patch = img[y : y + step, x : x + step]
                    if patch.mean() > 200:
                        cls = int(patch[..., 0].mean() > patch[..., 2].mean())
                        dets.append(Detection(BBox(x, y, x + step, y + step), NAMES[cls], 0.9))
            out.append(dets)
        return out


@dataclass(frozen=True)
class FakeSpec:
    delay_s: float = 0.0

    def load(self, threads: int) -> FakeDetector:
        return FakeDetector(self.delay_s)


def write_litter_photo(path: Path, seed: int, size: tuple[int, int] = (160, 128)) -> int:
    """A dark photo with ``seed % 4`` bright squares; returns how many."""
    rng = np.random.default_rng(seed)
    w, h = size
    img = rng.integers(0, 60, size=(h, w, 3), dtype=np.uint8)
    n = seed % 4
    for k in range(n):
        x, y = 32 * (k + 1), 32 * (1 + (k % 2))
        img[y : y + 32, x : x + 32] = (255, 230, 210) if k % 2 else (210, 230, 255)
    Image.fromarray(img).save(path, quality=95)
    return n


def make_survey(folder: Path, n: int) -> tuple[Path, int]:
    """n photos without EXIF, positioned by a sidecar CSV; returns the sidecar and the expected items."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    expected = 0
    for i in range(n):
        name = f"img_{i:04d}.jpg"
        expected += write_litter_photo(folder / name, i)
        rows.append(
            {
                "image": name,
                "lon": 100.1 + i * 1e-4,
                "lat": 20.2 - i * 1e-4,
                "captured_at": f"2026-03-14T08:{i // 60:02d}:{i % 60:02d}+00:00",
            }
        )
    sidecar = folder / "positions.csv"
    pd.DataFrame(rows).to_csv(sidecar, index=False)
    return sidecar, expected


def exit_the_process(_: object) -> None:
    """A task that ends the worker process running it, as an out-of-memory kill would."""
    os._exit(1)
