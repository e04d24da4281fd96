"""Honest evaluation of a litter model on any YOLO-format folder, through the inference path of ``detect``.

The folder needs ``images/`` (or ``images/<split>/``), ``labels/`` beside them and a ``data.yaml`` with the
class names. The model (``detect``'s default when none is given) runs as ``detect`` runs it: the same
:class:`~plastic_hotspots.detector.predictor.YoloDetector`, backend, input size and slicing, only with a
low score threshold so that the whole precision-recall curve is seen. A dataset class is matched to the
model's class of the same name, whatever its id on either side; a class map renames or drops dataset
classes (:mod:`plastic_hotspots.training.classmap`), and ``agnostic`` makes every class one ``litter``.
Metrics are the usual COCO-style ones, computed here from the predictions: average precision (101-point
interpolation, greedy matching by score) at IoU 0.5 and averaged over 0.5:0.95, per class and per object
size (small < 32², medium < 96², large, in pixels of the original image), precision and recall at the score
threshold, a confusion matrix, and example images of misses and false alarms.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from plastic_hotspots.boxmath import FloatArray, iou
from plastic_hotspots.detector.settings import DetectorSettings
from plastic_hotspots.training.classmap import AGNOSTIC, ClassMap, resolve
from plastic_hotspots.training.errors import TrainingError

IOU_THRESHOLDS = np.round(np.arange(0.5, 0.96, 0.05), 2)
SMALL, MEDIUM = 32**2, 96**2
SIZES: dict[str, tuple[float, float]] = {
    "small": (0, SMALL),
    "medium": (SMALL, MEDIUM),
    "large": (MEDIUM, math.inf),
}
#: The detector's thresholds while evaluating: every box, as Ultralytics' own validation keeps them.
EVAL_CONF, EVAL_IOU = 0.001, 0.6


@dataclass(frozen=True, slots=True)
class Truth:
    """Ground-truth boxes of one image (pixels xyxy) with class names."""

    image: Path
    boxes: FloatArray
    names: tuple[str, ...]


def read_folder(folder: Path, split: str | None = None) -> tuple[list[Truth], tuple[str, ...]]:
    """The labelled images of a YOLO folder and its class names."""
    import yaml
    from PIL import Image

    meta_file = folder / "data.yaml"
    if not meta_file.is_file():
        raise TrainingError(f"{meta_file} is missing", hint="a YOLO folder needs data.yaml with `names`")
    meta = yaml.safe_load(meta_file.read_text(encoding="utf-8"))
    names = meta.get("names")
    if not names:
        raise TrainingError(f"{meta_file} has no class names", hint="add `names:` to data.yaml")
    classes = tuple(names) if isinstance(names, list) else tuple(names[k] for k in sorted(names, key=int))
    image_dir = folder / "images" / split if split else folder / "images"
    if not image_dir.is_dir():
        raise TrainingError(
            f"{image_dir} does not exist", hint="pass --split train/val/test or a folder with images/"
        )
    truths = []
    for image in sorted(p for p in image_dir.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"}):
        label = (
            image.parent.parent.parent / "labels" / split / (image.stem + ".txt")
            if split
            else (folder / "labels" / (image.stem + ".txt"))
        )
        with Image.open(image) as img:
            width, height = img.size
            if img.getexif().get(0x0112) in {5, 6, 7, 8}:  # labels are in upright pixels
                width, height = height, width
        rows = []
        found = []
        if label.is_file():
            for line in label.read_text(encoding="utf-8").split("\n"):
                parts = line.split()
                if len(parts) < 5:
                    continue
                cls, cx, cy, w, h = int(parts[0]), *(float(v) for v in parts[1:5])
                rows.append(
                    [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]
                )
                found.append(classes[cls])
        truths.append(Truth(image, np.array(rows, dtype=np.float64).reshape(-1, 4), tuple(found)))
    return truths, classes


def _iou_matrix(a: FloatArray, b: FloatArray) -> FloatArray:
    return iou(a[:, None, :], b[None, :, :])


def _assign(overlaps: FloatArray, order: npt.NDArray[np.intp], thr: float, ignored: npt.NDArray[np.bool_]
            ) -> npt.NDArray[np.intp]:  # fmt: skip
    """Greedy matching by score: the truth each prediction found (-1: none); counted truths first."""
    n_pred, n_gt = overlaps.shape
    matched = np.full(n_pred, -1, dtype=np.intp)
    if n_pred == 0 or n_gt == 0:
        return matched
    free = np.ones(n_gt, dtype=bool)
    for i in order:
        hit = free & (overlaps[i] >= thr)
        if not hit.any():
            continue
        pool = hit & ~ignored if (hit & ~ignored).any() else hit
        candidates = np.where(pool)[0]
        j = candidates[np.argmax(overlaps[i, candidates])]
        free[j] = False
        matched[i] = j
    return matched


def _match(
    pred: FloatArray, scores: FloatArray, gt: FloatArray, thr: float
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Greedy matching by score: which predictions are true positives, which truths were found."""
    found = np.zeros(len(gt), dtype=bool)
    if len(pred) == 0 or len(gt) == 0:
        return np.zeros(len(pred), dtype=bool), found
    matched = _assign(_iou_matrix(pred, gt), np.argsort(-scores, kind="stable"), thr, found)
    found[matched[matched >= 0]] = True
    return matched >= 0, found


def average_precision(tp: npt.NDArray[np.bool_], scores: FloatArray, n_truth: int) -> float:
    """COCO 101-point interpolated average precision of ranked detections."""
    if n_truth == 0:
        return float("nan")
    if len(tp) == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    hits = tp[order].astype(np.float64)
    cum_tp = np.cumsum(hits)
    recall = cum_tp / n_truth
    precision = cum_tp / np.arange(1, len(hits) + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    points = np.linspace(0, 1, 101)
    idx = np.searchsorted(recall, points, side="left")
    return float(np.mean([envelope[i] if i < len(envelope) else 0.0 for i in idx]))


def _area(boxes: FloatArray) -> FloatArray:
    return np.asarray((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class _Pair:
    """One image's predictions and truths of one class, with their overlaps."""

    boxes: FloatArray
    scores: FloatArray
    truths: FloatArray
    overlaps: FloatArray
    order: npt.NDArray[np.intp]


def _pairs(truths: Sequence[Truth], predictions: Predictions, name: str) -> list[_Pair]:
    out = []
    for truth, (boxes, scores, names) in zip(truths, predictions, strict=True):
        keep = np.array([n == name for n in names], dtype=bool).reshape(-1)
        gt = truth.boxes[np.array([n == name for n in truth.names], dtype=bool).reshape(-1)]
        pb, ps = boxes[keep], scores[keep]
        overlaps = _iou_matrix(pb, gt) if len(pb) and len(gt) else np.zeros((len(pb), len(gt)))
        out.append(_Pair(pb, ps, gt, overlaps, np.argsort(-ps, kind="stable")))
    return out


def _class_ap(
    pairs: Sequence[_Pair], thr: float, size: tuple[float, float] | None = None
) -> tuple[float, int]:
    """AP of one class at one IoU threshold, and its truth count; within an object-size range if given.

    As COCO does: truths outside the range are ignored (a prediction matching one counts neither way),
    and an unmatched prediction counts as a false alarm only when its own area is in the range.
    """
    tps, scores, n_truth = [], [], 0
    for p in pairs:
        gt_area = _area(p.truths)
        ignored = (
            ~((gt_area >= size[0]) & (gt_area < size[1])) if size else np.zeros(len(p.truths), dtype=bool)
        )
        matched = _assign(p.overlaps, p.order, thr, ignored)
        counted: npt.NDArray[np.bool_] = np.ones(len(p.boxes), dtype=bool)
        if size:
            pred_area = _area(p.boxes)
            outside = ~((pred_area >= size[0]) & (pred_area < size[1]))
            hit_ignored = ignored[matched] if len(p.truths) else np.zeros(len(p.boxes), dtype=bool)
            counted = np.where(matched >= 0, ~hit_ignored, ~outside)
        tps.append((matched >= 0)[counted])
        scores.append(p.scores[counted])
        n_truth += int((~ignored).sum())
    if not tps:
        return float("nan"), 0
    return average_precision(np.concatenate(tps), np.concatenate(scores), n_truth), n_truth


Predictions = Sequence[tuple[FloatArray, FloatArray, tuple[str, ...]]]
Scores = dict[str, float | int | None]


@dataclass
class Evaluation:
    """Metrics of one model on one folder (see the module docstring); ``None`` where nothing was there."""

    map50: float
    map50_95: float
    per_class: dict[str, dict[str, float | int | None]]
    recall_by_size: dict[str, float | None]
    precision: float
    recall: float
    images: int
    truths: int
    unmatched_classes: dict[str, list[str]] = field(default_factory=dict)
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    ap_by_size: dict[str, Scores] = field(default_factory=dict)
    class_map: dict[str, str | None] = field(default_factory=dict)
    dropped_boxes: dict[str, int] = field(default_factory=dict)
    agnostic: bool = False
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The metrics as JSON (keys ``map50``, ``map50_95``, ``per_class`` ...); NaN written as null."""
        return json.dumps(_finite(self.__dict__), indent=1, default=lambda v: None)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def evaluate_predictions(
    truths: Sequence[Truth],
    predictions: Predictions,
    classes: Sequence[str],
    model_classes: Sequence[str],
    conf: float = 0.25,
) -> Evaluation:
    """Metrics of ``(boxes, scores, names)`` predictions per image against the truths, by class name."""
    model_set = set(model_classes)
    shared = [c for c in dict.fromkeys(classes) if c in model_set]
    per_class: dict[str, dict[str, float | int | None]] = {}
    aps: dict[float, list[float]] = {float(thr): [] for thr in IOU_THRESHOLDS}
    by_size: dict[str, dict[float, list[float]]] = {s: {float(t): [] for t in IOU_THRESHOLDS} for s in SIZES}
    size_truths = dict.fromkeys(SIZES, 0)
    size_found = {"small": [0, 0], "medium": [0, 0], "large": [0, 0]}
    all_tp = all_pred = all_found = all_truth = 0
    for name in shared:
        pairs = _pairs(truths, predictions, name)
        n_truth = sum(len(p.truths) for p in pairs)
        ap_at = {float(thr): _class_ap(pairs, float(thr))[0] for thr in IOU_THRESHOLDS}
        for size, bounds in SIZES.items():
            for thr in IOU_THRESHOLDS:
                ap, counted = _class_ap(pairs, float(thr), bounds)
                if counted:
                    by_size[size][float(thr)].append(ap)
            size_truths[size] += _class_ap(pairs, 0.5, bounds)[1]
        class_tp = class_pred = class_found = 0
        for p in pairs:
            above = p.scores >= conf
            tp_c, found_c = _match(p.boxes[above], p.scores[above], p.truths, 0.5)
            class_tp += int(tp_c.sum())
            class_pred += int(above.sum())
            class_found += int(found_c.sum())
            all_truth += len(p.truths)
            for k, area in enumerate(_area(p.truths)):
                size = "small" if area < SMALL else "medium" if area < MEDIUM else "large"
                size_found[size][0] += int(found_c[k])
                size_found[size][1] += 1
        all_tp, all_pred, all_found = all_tp + class_tp, all_pred + class_pred, all_found + class_found
        per_class[name] = {
            "map50": ap_at[0.5],
            "map50_95": float(np.mean(list(ap_at.values()))),
            "precision": class_tp / class_pred if class_pred else None,
            "recall": class_found / n_truth if n_truth else None,
            "truths": n_truth,
        }
        if n_truth:
            for thr, ap in ap_at.items():
                aps[thr].append(ap)
    map50 = float(np.mean(aps[0.5])) if aps[0.5] else 0.0
    map50_95 = float(np.mean([np.mean(v) for v in aps.values() if v])) if aps[0.5] else 0.0
    ap_by_size: dict[str, Scores] = {}
    for size, at in by_size.items():
        ap50 = _mean(at[0.5])
        ap_by_size[size] = {
            "map50": ap50,
            "map50_95": _mean([float(np.mean(v)) for v in at.values() if v]) if ap50 is not None else None,
            "truths": size_truths[size],
        }
    return Evaluation(
        map50=map50,
        map50_95=map50_95,
        per_class=per_class,
        recall_by_size={k: (v[0] / v[1] if v[1] else None) for k, v in size_found.items()},
        precision=all_tp / all_pred if all_pred else 0.0,
        recall=all_found / all_truth if all_truth else 0.0,
        images=len(truths),
        truths=sum(len(t.names) for t in truths),
        unmatched_classes={
            "only_in_data": [c for c in dict.fromkeys(classes) if c not in model_set],
            "only_in_model": [c for c in model_classes if c not in set(classes)],
        },
        confusion=_confusion(truths, predictions, conf),
        ap_by_size=ap_by_size,
    )


def _confusion(truths: Sequence[Truth], predictions: Predictions, conf: float) -> dict[str, dict[str, int]]:
    """Counts of (true class -> predicted class); ``background`` for misses and false alarms (IoU 0.5)."""
    table: dict[str, dict[str, int]] = {}

    def add(t: str, p: str) -> None:
        table.setdefault(t, {}).setdefault(p, 0)
        table[t][p] += 1

    for truth, (boxes, scores, names) in zip(truths, predictions, strict=True):
        keep = scores >= conf
        pb, pn = boxes[keep], [n for n, k in zip(names, keep, strict=True) if k]
        used = np.zeros(len(pb), dtype=bool)
        iou = (
            _iou_matrix(truth.boxes, pb)
            if len(pb) and len(truth.boxes)
            else np.zeros((len(truth.boxes), len(pb)))
        )
        for i, tname in enumerate(truth.names):
            j = int(np.argmax(iou[i])) if len(pb) else -1
            if j >= 0 and iou[i, j] >= 0.5 and not used[j]:
                used[j] = True
                add(tname, pn[j])
            else:
                add(tname, "background")
        for j in np.where(~used)[0]:
            add("background", pn[j])
    return table


def apply_class_map(
    truths: Sequence[Truth], resolved: dict[str, str | None]
) -> tuple[list[Truth], dict[str, int]]:
    """Truths with their classes renamed, and the boxes of dropped (``None``) classes removed and counted."""
    dropped = {c: 0 for c, v in resolved.items() if v is None}
    out = []
    for truth in truths:
        keep = np.array([resolved.get(n, n) is not None for n in truth.names], dtype=bool).reshape(-1)
        for n in truth.names:
            if resolved.get(n, n) is None:
                dropped[n] += 1
        names = tuple(str(resolved.get(n, n)) for n, k in zip(truth.names, keep, strict=True) if k)
        out.append(Truth(truth.image, truth.boxes[keep], names))
    return out, dropped


def _read_rgb(path: Path) -> npt.NDArray[np.uint8]:
    """An image's upright RGB pixels at full size (boxes and object sizes are in these pixels)."""
    from PIL import Image

    from plastic_hotspots.exif import upright

    with Image.open(path) as img:
        turned = upright(img)
        return np.asarray(turned.convert("RGB"), dtype=np.uint8)


def evaluate(
    model: Path | None,
    folder: Path,
    *,
    split: str | None = None,
    imgsz: int = 640,
    conf: float = 0.25,
    backend: str = "onnx",
    out: Path | None = None,
    settings: DetectorSettings | None = None,
    class_map: ClassMap | Path | None = None,
    agnostic: bool = False,
) -> Evaluation:
    """Run a model over a labelled folder as ``detect`` runs it, and score it.

    Args:
        model: Weights (.pt); None: ``detect``'s default model
            (:func:`~plastic_hotspots.detector.yolo.default_model_path`).
        folder: YOLO folder (``images/``, ``labels/``, ``data.yaml``).
        split: Sub-folder of ``images/`` and ``labels/``.
        imgsz: Model input size (when ``settings`` is not given).
        conf: Score threshold of precision, recall, the confusion matrix and the examples.
        backend: Backend (when ``settings`` is not given).
        out: Folder for ``metrics.json`` (with provenance), the confusion plot and examples.
        settings: How the detector runs (backend, imgsz, device, slicing), as for ``detect``; its score
            and NMS thresholds are replaced by :data:`EVAL_CONF` and :data:`EVAL_IOU`.
        class_map: Dataset class -> taxonomy class (``None`` drops), or the YAML file holding it.
        agnostic: Score every class as one ``litter`` class.

    Raises:
        TrainingError: No images, or dataset classes the model does not know (see the class map).
        ModelError: The model cannot be loaded or run.
    """
    from plastic_hotspots.detector.predictor import YoloDetector
    from plastic_hotspots.detector.yolo import cache_root, default_model_path
    from plastic_hotspots.provenance import make_provenance

    inputs = [str(folder) + (f"/images/{split}" if split else "")]
    if isinstance(class_map, Path):
        inputs.append(str(class_map))
        class_map = ClassMap.from_file(class_map)
    truths, classes = read_folder(folder, split)
    if not truths:
        where = folder / "images" / split if split else folder / "images"
        splits = sorted(p.name for p in (folder / "images").iterdir() if p.is_dir()) if not split else []
        hint = (
            f"its images are in split folders: add --split {' or '.join(splits)}"
            if splits
            else "point --data at a YOLO folder with labelled images"
        )
        raise TrainingError(f"no images in {where}", hint=hint)
    base = settings or DetectorSettings(backend=backend, imgsz=imgsz)
    run = replace(base, conf=EVAL_CONF, iou=EVAL_IOU)
    weights = model or default_model_path()
    det = YoloDetector(weights, run, config_dir=cache_root() / "ultralytics")
    names = det.names
    model_classes = [names[k] for k in sorted(names)]
    resolved = resolve(classes, class_map, model_classes=model_classes, agnostic=agnostic)
    truths, dropped = apply_class_map(truths, resolved)
    predictions = []
    for truth in truths:
        (raw,) = det.predict_raw([_read_rgb(truth.image)])
        labels = tuple(AGNOSTIC if agnostic else names.get(int(c), str(c)) for c in raw.classes)
        predictions.append((raw.boxes, raw.scores, labels))
    eval_classes = list(dict.fromkeys(v for v in resolved.values() if v is not None))
    result = evaluate_predictions(
        truths, predictions, eval_classes, [AGNOSTIC] if agnostic else model_classes, conf
    )
    result.class_map, result.dropped_boxes, result.agnostic = resolved, dropped, agnostic
    provenance = make_provenance(
        "training.evaluate",
        parameters={**det.parameters(), "slice_overlap": run.slice_overlap, "score_threshold": conf,
                    "split": split, "agnostic": agnostic},
        inputs=inputs,
        model=det.model_version,
    )  # fmt: skip
    result.provenance = json.loads(provenance.to_json())
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(result.to_json(), encoding="utf-8")
        plot_confusion(result.confusion, out / "confusion.png")
        write_examples(truths, predictions, conf, out / "examples")
    return result


def plot_confusion(table: dict[str, dict[str, int]], path: Path) -> None:
    """The confusion matrix as a heat map (rows: true class, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = sorted(
        {*table, *(p for row in table.values() for p in row)}, key=lambda s: (s == "background", s)
    )
    grid = np.array([[table.get(t, {}).get(p, 0) for p in labels] for t in labels])
    fig, ax = plt.subplots(figsize=(1 + 0.6 * len(labels), 1 + 0.6 * len(labels)))
    ax.imshow(grid, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    for (i, j), v in np.ndenumerate(grid):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_examples(
    truths: Sequence[Truth], predictions: Predictions, conf: float, folder: Path, limit: int = 12
) -> None:
    """Images with misses (red: true box not found) and false alarms (orange: box matching no truth)."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for truth, (boxes, scores, _names) in zip(truths, predictions, strict=True):
        keep = scores >= conf
        pb = boxes[keep]
        iou = (
            _iou_matrix(truth.boxes, pb)
            if len(pb) and len(truth.boxes)
            else np.zeros((len(truth.boxes), len(pb)))
        )
        missed = [i for i in range(len(truth.boxes)) if not len(pb) or iou[i].max() < 0.5]
        false = [j for j in range(len(pb)) if not len(truth.boxes) or iou[:, j].max() < 0.5]
        if not missed and not false:
            continue
        with Image.open(truth.image) as img:
            canvas = img.convert("RGB")
        draw = ImageDraw.Draw(canvas)
        for i in missed:
            draw.rectangle(tuple(truth.boxes[i]), outline=(230, 30, 30), width=3)
        for j in false:
            draw.rectangle(tuple(pb[j]), outline=(255, 160, 0), width=3)
        canvas.save(folder / f"{truth.image.stem}.jpg", quality=85)
        written += 1
        if written >= limit:
            break
