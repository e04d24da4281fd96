"""The shipped baseline litter model: how it is made from the labelled litter photos in ``shared/``.

``python -m plastic_hotspots.training.baseline prepare SHARED_DIR OUT`` turns ``trash_collection_self`` into a
dataset in the
project's taxonomy (classes matched by name, split by its near-duplicate ``group`` column, never by file);
``python -m plastic_hotspots.training.baseline train DATASET START OUT`` fine-tunes from a local checkpoint,
offline.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from plastic_hotspots.annotations.dataset import DatasetSpec, read_yolo_folder, write_dataset
from plastic_hotspots.annotations.taxonomy import CLASS_NAMES

#: The dataset's class names mapped to the project's taxonomy.
TRASH_COLLECTION_CLASSES = {
    "bottle": "bottle",
    "cups": "cup_container",
    "drink-cans": "can",
    "drink-packets": "wrapper_sachet",
    "styrofoam": "foam",
    "wrappers": "wrapper_sachet",
    "plastic-trash": "other_plastic",
}


def prepare(shared_dir: Path, out: Path, seed: int = 0) -> str:
    """Write the baseline dataset; returns its version."""
    folder = Path(shared_dir) / "trash_collection_self"
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as f:
        groups = {row["file"]: row["group"] for row in csv.DictReader(f)}
    photos, boxes = read_yolo_folder(folder, TRASH_COLLECTION_CLASSES, groups=groups)
    summary = write_dataset(
        out, photos, boxes, CLASS_NAMES, DatasetSpec(fractions=(0.8, 0.1, 0.1), seed=seed),
        source={"path": str(folder), "dataset": "trash_collection_self (CC BY 4.0)"},
    )  # fmt: skip
    print(f"dataset {summary.version}: images {dict(summary.images)}, boxes {dict(summary.boxes)}")
    return summary.version


def main() -> None:
    """Command line of the baseline recipe."""
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("shared_dir", type=Path)
    p.add_argument("out", type=Path)
    t = sub.add_parser("train")
    t.add_argument("dataset", type=Path)
    t.add_argument("start", type=Path)
    t.add_argument("out", type=Path)
    t.add_argument("--epochs", type=int, default=120)
    t.add_argument("--imgsz", type=int, default=640)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--device", default="0")
    t.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.cmd == "prepare":
        prepare(args.shared_dir, args.out)
    else:
        from plastic_hotspots.detector.yolo import train_yolo

        best = train_yolo(
            args.dataset / "data.yaml", args.start, args.out, epochs=args.epochs, imgsz=args.imgsz,
            batch=args.batch, device=args.device, seed=args.seed, config_dir=args.out / "cfg",
        )  # fmt: skip
        print(f"best weights: {best}")


if __name__ == "__main__":
    main()
