"""The shipped baseline litter model: how it is made from the labelled litter photos in ``shared/``.

``python -m plastic_hotspots.training.baseline prepare SHARED_DIR OUT`` turns ``trash_collection_self``
(litter items) and ``street_piles_cn`` (street piles and overflowing bins, with bins as negatives) into one
dataset in the project's taxonomy: classes matched by name, split by near-duplicate group, never by file
(the litter photos' ``group`` column; each pile photo's source frame), each source split on its own.
``python -m plastic_hotspots.training.baseline train DATASET START OUT`` fine-tunes from a local checkpoint,
offline; ``--freeze N`` keeps the first N layers (10: YOLOv8's backbone) as they are, which shortens an
epoch on a CPU, and ``--resume`` continues an interrupted run.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
from collections.abc import Sequence
from pathlib import Path

from plastic_hotspots.annotations.dataset import (
    DatasetSpec,
    LabelledBox,
    PhotoMeta,
    assign_splits,
    read_yolo_folder,
    write_dataset,
)
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

#: ``street_piles_cn``'s classes: heaps of refuse and overflowing bins are piles; a bin is not litter (its
#: photos stay in as negatives, with no box).
STREET_PILES_CLASSES = {"garbage": "pile", "overflow": "pile", "garbage_bin": ""}


def _pile_group(name: str) -> str:
    """The source frame of a Roboflow export's photo (``000123_jpg.rf.<hash>.jpg`` -> ``piles-000123``)."""
    return "piles-" + name.split("_jpg.rf.", 1)[0].split(".rf.", 1)[0]


def pseudo_labels(
    photos: Sequence[PhotoMeta],
    model: Path,
    *,
    conf: float = 0.4,
    keep_out: frozenset[str] = frozenset({"pile"}),
) -> list[LabelledBox]:
    """``model``'s confident boxes on ``photos``, classes in ``keep_out`` left out.

    The pile photos are labelled for piles only: every bottle or wrapper in them would be learnt as
    background, and the model would unlearn the litter classes. The litter model's own confident boxes on
    those photos (never on test photos) keep that from happening.
    """
    import numpy as np
    from PIL import Image

    from plastic_hotspots.detector.predictor import YoloDetector
    from plastic_hotspots.detector.settings import DetectorSettings
    from plastic_hotspots.progress import track

    detector = YoloDetector(model, DetectorSettings(conf=conf))
    out = []
    for photo in track(photos, "Pseudo-labelling"):
        with Image.open(photo.path) as img:
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
        for d in detector.predict([rgb])[0]:
            if d.class_name not in keep_out:
                out.append(LabelledBox(photo.key, d.class_name, d.box))
    return out


def prepare(
    shared_dir: Path, out: Path, seed: int = 0, *, piles: bool = True, pseudo_model: Path | None = None
) -> str:
    """Write the baseline dataset (``street_piles_cn`` left out if ``piles`` is False); its version.

    With ``pseudo_model``, the pile photos outside the test split also carry that model's confident litter
    boxes (see :func:`pseudo_labels`).
    """
    spec = DatasetSpec(fractions=(0.8, 0.1, 0.1), seed=seed)
    folder = Path(shared_dir) / "trash_collection_self"
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as f:
        groups = {row["file"]: row["group"] for row in csv.DictReader(f)}
    photos, boxes = read_yolo_folder(folder, TRASH_COLLECTION_CLASSES, groups=groups)
    pile_folder = Path(shared_dir) / "street_piles_cn"
    if piles and pile_folder.is_dir():
        names = [p.name for p in (pile_folder / "images").iterdir()]
        pile_photos, pile_boxes = read_yolo_folder(
            pile_folder, STREET_PILES_CLASSES, groups={name: _pile_group(name) for name in names}
        )
        pile_photos = [dataclasses.replace(p, source="street_piles_cn") for p in pile_photos]
        if pseudo_model is not None:
            splits = assign_splits(photos + pile_photos, spec)
            fit = [p for p in pile_photos if splits[p.key] != "test"]
            pile_boxes = pile_boxes + pseudo_labels(fit, pseudo_model)
        photos = photos + pile_photos
        boxes = boxes + pile_boxes
    summary = write_dataset(
        out, photos, boxes, CLASS_NAMES, spec,
        source={
            "path": str(folder),
            "dataset": "trash_collection_self (CC BY 4.0); street_piles_cn: 公开数据集111 (Roboflow user "
            "project-shb1t), CC BY 4.0",
        },
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
    p.add_argument("--pseudo-labels", type=Path, default=None, help="model whose confident litter boxes "
                   "label the pile photos' litter (outside the test split)")  # fmt: skip
    t = sub.add_parser("train")
    t.add_argument("dataset", type=Path)
    t.add_argument("start", type=Path)
    t.add_argument("out", type=Path)
    t.add_argument("--epochs", type=int, default=120)
    t.add_argument("--imgsz", type=int, default=640)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--device", default="0")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--freeze", type=int, default=0, help="keep the first N layers (10: the backbone)")
    t.add_argument("--workers", type=int, default=4)
    t.add_argument("--resume", action="store_true", help="continue the interrupted run in OUT")
    t.add_argument(
        "--only-classes", default="", help="comma-separated classes to train alone (e.g. pile); the others "
        "keep the starting model's outputs exactly",
    )  # fmt: skip
    t.add_argument("--lr0", type=float, default=None, help="AdamW learning rate (default: automatic)")
    args = parser.parse_args()
    if args.cmd == "prepare":
        prepare(args.shared_dir, args.out, pseudo_model=args.pseudo_labels)
    else:
        from plastic_hotspots.detector.yolo import train_yolo

        best = train_yolo(
            args.dataset / "data.yaml", args.start, args.out, epochs=args.epochs, imgsz=args.imgsz,
            batch=args.batch, device=args.device, seed=args.seed, config_dir=args.out / "cfg",
            freeze=args.freeze, workers=args.workers, resume=args.resume,
            only_classes=[c.strip() for c in args.only_classes.split(",") if c.strip()], lr0=args.lr0,
        )  # fmt: skip
        print(f"best weights: {best}")


if __name__ == "__main__":
    main()
