"""Calibration photos for the int8 quantization: a fixed, seeded set of the model's training photos.

Where they come from, first found wins:

1. ``PLASTIC_HOTSPOTS_CALIBRATION``: a folder of photos the user chose;
2. the training split of the model's own dataset (the ``data.yaml`` its checkpoint was trained on),
   when that dataset is on this machine;
3. the training split of ``trash_collection_self`` in the project's shared data (``../shared/data``
   or ``PLASTIC_HOTSPOTS_SHARED_DATA``), split as the shipped model's recipe splits it, so the held-out
   photos never calibrate.

Nothing is downloaded. Photos of ``river_floating_jakarta`` are never used (refused wherever they come
from). The set is a seeded sample, sorted, so the same inputs always give the same set; its
:attr:`CalibrationSet.description` is recorded beside the int8 model and in each run's provenance.
"""

from __future__ import annotations

import csv
import hashlib
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from plastic_hotspots.detector.errors import ModelError

DEFAULT_COUNT = 200
DEFAULT_SEED = 0
LITTER_DATASET = "trash_collection_self"
#: Datasets never used for calibration (kept for independent evaluation).
EXCLUDED = ("river_floating_jakarta",)
_SUFFIXES = {".jpg", ".jpeg", ".png"}


@dataclass(frozen=True, slots=True)
class CalibrationSet:
    """The calibration photos and how they were chosen (one line, recorded with the model)."""

    photos: tuple[Path, ...]
    description: str


def shared_data_dir() -> Path | None:
    """The project's shared data: ``PLASTIC_HOTSPOTS_SHARED_DATA``, else ``shared/data`` beside a parent."""
    env = os.environ.get("PLASTIC_HOTSPOTS_SHARED_DATA")
    if env:
        return Path(env) if Path(env).is_dir() else None
    here = Path(__file__).resolve()
    for base in (Path.cwd(), *Path.cwd().parents, *here.parents):
        candidate = base / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None


def litter_split(shared: Path, split: str, seed: int = DEFAULT_SEED) -> list[Path]:
    """The photos of ``trash_collection_self`` in one split (train, val or test) of the baseline recipe.

    Whole near-duplicate groups (the dataset manifest's ``group``) go to one split, 80/10/10, as
    ``training.baseline prepare`` makes them.
    """
    from plastic_hotspots.annotations.dataset import DatasetSpec, PhotoMeta, assign_splits

    folder = shared / LITTER_DATASET
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    photos = [
        PhotoMeta(row["file"], folder / "images" / row["file"], 640, 640, group=row["group"]) for row in rows
    ]
    splits = assign_splits(photos, DatasetSpec(fractions=(0.8, 0.1, 0.1), seed=seed))
    return sorted(p.path for p in photos if splits[p.key] == split and p.path.is_file())


def _dataset_train_photos(data_yaml: Path) -> list[Path]:
    """The training photos of an Ultralytics dataset YAML, when its ``train`` folder is here."""
    import yaml

    try:
        meta = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []
    train = meta.get("train") if isinstance(meta, dict) else None
    if not isinstance(train, str):
        return []
    base = Path(meta.get("path") or data_yaml.parent)
    base = base if base.is_absolute() else data_yaml.parent / base
    folder = base / train
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in _SUFFIXES)


def calibration_set(
    data_yaml: Path | None = None,
    *,
    count: int = DEFAULT_COUNT,
    seed: int = DEFAULT_SEED,
    shared: Path | None = None,
) -> CalibrationSet:
    """A fixed, seeded sample of up to ``count`` training photos (see the module's order of sources).

    Args:
        data_yaml: The dataset the model was trained on (its checkpoint's ``train_args.data``), if known.
        count: Photos wanted (fewer when the source has fewer).
        seed: Seed of the sample.
        shared: The shared data folder (default: :func:`shared_data_dir`).

    Raises:
        ModelError: No source of calibration photos on this machine, or one inside an excluded dataset.
    """
    env = os.environ.get("PLASTIC_HOTSPOTS_CALIBRATION")
    source: str
    if env:
        pool = sorted(p for p in Path(env).rglob("*") if p.suffix.lower() in _SUFFIXES)
        source = f"photos of {env} (PLASTIC_HOTSPOTS_CALIBRATION)"
    elif data_yaml is not None and (pool := _dataset_train_photos(Path(data_yaml))):
        source = f"the train split of the model's dataset {data_yaml}"
    else:
        shared = shared or shared_data_dir()
        if shared is None or not (shared / LITTER_DATASET / "manifest.csv").is_file():
            raise ModelError(
                "no calibration photos for the int8 quantization: the model's dataset is not here "
                f"and neither is shared/data/{LITTER_DATASET}",
                hint="set PLASTIC_HOTSPOTS_CALIBRATION to a folder of 100-300 training photos, "
                "or use --precision fp32/bf16",
            )
        pool = litter_split(shared, "train", seed=DEFAULT_SEED)
        source = f"the train split of {LITTER_DATASET} (baseline recipe, seed {DEFAULT_SEED})"
    excluded = [p for p in pool if any(name in p.parts for name in EXCLUDED)]
    if excluded:
        raise ModelError(
            f"calibration photos inside {', '.join(EXCLUDED)} ({excluded[0]}): that data is never used",
            hint="point PLASTIC_HOTSPOTS_CALIBRATION at training photos",
        )
    if not pool:
        raise ModelError(f"no photos in {source}", hint="give a folder of .jpg or .png training photos")
    chosen = sorted(random.Random(seed).sample(pool, min(count, len(pool))))
    digest = hashlib.sha256("\n".join(p.name for p in chosen).encode()).hexdigest()[:12]
    description = (
        f"{len(chosen)} of {len(pool)} photos from {source}, seeded sample (seed {seed}), "
        f"names sha256:{digest}"
    )
    return CalibrationSet(tuple(chosen), description)


def calibration_tensors(photos: tuple[Path, ...], imgsz: int) -> list[npt.NDArray[np.float32]]:
    """The photos as model inputs: EXIF orientation applied, RGB, letterboxed as for inference."""
    from PIL import Image, ImageOps

    from plastic_hotspots.detector.runtime import letterbox

    tensors = []
    for path in photos:
        with Image.open(path) as img:
            rgb = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
        tensors.append(letterbox(rgb, imgsz)[0])
    return tensors
