"""A deterministic stand-in for the YOLO detector, for testing the batch runner without a model.

It "detects" one box per bright square it finds on a coarse grid of the image, so outputs depend on
image content only. ``delay_s`` slows it down so a test can kill a run half-way.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
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
