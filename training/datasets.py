"""Check a YOLO dataset folder before training starts on it.

Ultralytics finds a missing ``data.yaml`` or an empty split only once training has begun, and says so in
a traceback. :func:`check_dataset` says it first, naming the file or folder and how to make a dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plastic_hotspots.detector.ingest import PHOTO_SUFFIXES
from plastic_hotspots.training.errors import TrainingError

MAKE_ONE = (
    "give the folder that `plastic-hotspots annotate dataset --out DIR` (or `training/baseline.py prepare`) "
    "wrote: data.yaml with `names`, and images/train, images/val"
)


def check_dataset(folder: Path, splits: tuple[str, ...] = ("train", "val")) -> Path:
    """The ``data.yaml`` of the YOLO dataset ``folder``, checked for what training reads.

    ``folder`` may also be the ``data.yaml`` itself. Each split in ``splits`` must be named in it and
    exist; a split that is a folder must hold images.

    Raises:
        TrainingError: The folder or its ``data.yaml`` is missing, the YAML cannot be read or holds no
            class names, or a split is missing or empty.
    """
    import yaml

    folder = Path(folder)
    if folder.is_file() and folder.suffix.lower() in (".yaml", ".yml"):
        data_yaml = folder
    elif folder.is_dir():
        data_yaml = folder / "data.yaml"
    elif folder.exists():
        raise TrainingError(f"the dataset {folder} is a file, not a dataset folder", hint=MAKE_ONE)
    else:
        raise TrainingError(f"the dataset {folder} was not found", hint=MAKE_ONE)
    if not data_yaml.is_file():
        raise TrainingError(f"{folder} holds no data.yaml: it is not a YOLO dataset", hint=MAKE_ONE)
    try:
        meta: Any = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise TrainingError(f"{data_yaml} is not valid YAML: {exc}", hint=MAKE_ONE) from None
    if not isinstance(meta, dict) or not meta.get("names"):
        raise TrainingError(f"{data_yaml} has no class names", hint="add `names:` to data.yaml")
    base = meta.get("path")
    if base is not None and not Path(str(base)).is_absolute():
        return data_yaml  # a relative `path` is read against Ultralytics' own datasets folder
    root = Path(str(base)) if base is not None else data_yaml.parent
    for split in splits:
        entry = meta.get(split)
        if not entry:
            raise TrainingError(f"{data_yaml} names no `{split}` images", hint=MAKE_ONE)
        for item in entry if isinstance(entry, list) else [entry]:
            where = root / str(item)
            if not where.exists():
                raise TrainingError(f"the {split} images of {data_yaml} are missing: {where}", hint=MAKE_ONE)
            if where.is_dir() and not any(
                p.suffix.lower() in PHOTO_SUFFIXES for p in where.rglob("*") if p.is_file()
            ):
                raise TrainingError(
                    f"the {split} split of {data_yaml} holds no images ({where})",
                    hint="label more photos (every split needs some), or move photos between the splits",
                )
    return data_yaml
