"""Honest evaluation of a litter model on any YOLO-format folder, classes matched by name.

The folder needs ``images/`` (or ``images/<split>/``), ``labels/`` beside them and a ``data.yaml`` with the
class names. A class is matched to the model's class of the same name, whatever its id on either side;
classes only one side knows are reported, not silently mixed. Metrics are the usual COCO-style ones:
average precision (101-point interpolation) at IoU 0.5 and averaged over 0.5:0.95, precision and recall at
the score threshold, recall by object size (small < 32², medium < 96², large, in pixels of the image), a
confusion matrix, and example images of misses and false alarms.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from plastic_hotspots.boxmath import FloatArray, iou
from plastic_hotspots.training.errors import TrainingError

IOU_THRESHOLDS = np.round(np.arange(0.5, 0.96, 0.05), 2)
SMALL, MEDIUM = 32**2, 96**2


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


def _match(
    pred: FloatArray, scores: FloatArray, gt: FloatArray, thr: float
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Greedy matching by score: which predictions are true positives, which truths were found."""
    tp = np.zeros(len(pred), dtype=bool)
    found = np.zeros(len(gt), dtype=bool)
    if len(pred) == 0 or len(gt) == 0:
        return tp, found
    iou = _iou_matrix(pred, gt)
    for i in np.argsort(-scores, kind="stable"):
        candidates = np.where(~found & (iou[i] >= thr))[0]
        if candidates.size:
            j = candidates[np.argmax(iou[i, candidates])]
            found[j] = True
            tp[i] = True
    return tp, found


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


@dataclass
class Evaluation:
    """Metrics of one model on one folder."""

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

    def to_json(self) -> str:
        """The metrics as JSON (keys ``map50``, ``map50_95``, ``per_class`` ...)."""
        return json.dumps(self.__dict__, indent=1, default=lambda v: None)


def evaluate_predictions(
    truths: Sequence[Truth],
    predictions: Sequence[tuple[FloatArray, FloatArray, tuple[str, ...]]],
    classes: Sequence[str],
    model_classes: Sequence[str],
    conf: float = 0.25,
) -> Evaluation:
    """Metrics of ``(boxes, scores, names)`` predictions per image against the truths, by class name."""
    shared = [c for c in classes if c in set(model_classes)]
    per_class: dict[str, dict[str, float | int | None]] = {}
    aps = {thr: [] for thr in IOU_THRESHOLDS}  # type: dict[float, list[float]]
    size_found = {"small": [0, 0], "medium": [0, 0], "large": [0, 0]}
    all_tp = all_pred = all_found = all_truth = 0
    for name in shared:
        n_truth = sum(t.names.count(name) for t in truths)
        class_tp = class_pred = class_found = 0
        ap_at: dict[float, float] = {}
        for thr in IOU_THRESHOLDS:
            tps, scores = [], []
            for truth, (boxes, sc, names) in zip(truths, predictions, strict=True):
                keep = np.array([n == name for n in names], dtype=bool)
                gt = (
                    truth.boxes[np.array([n == name for n in truth.names], dtype=bool)]
                    if truth.names
                    else truth.boxes[:0]
                )
                tp, _found = _match(boxes[keep], sc[keep], gt, float(thr))
                tps.append(tp)
                scores.append(sc[keep])
                if thr == 0.5:
                    above = sc[keep] >= conf
                    tp_c, found_c = _match(boxes[keep][above], sc[keep][above], gt, 0.5)
                    class_tp += int(tp_c.sum())
                    class_pred += int(above.sum())
                    class_found += int(found_c.sum())
                    all_truth += len(gt)
                    areas = (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])
                    for k, area in enumerate(areas):
                        size = "small" if area < SMALL else "medium" if area < MEDIUM else "large"
                        size_found[size][0] += int(found_c[k])
                        size_found[size][1] += 1
            ap_at[float(thr)] = average_precision(np.concatenate(tps), np.concatenate(scores), n_truth)
        ap50, ap = ap_at[0.5], float(np.mean(list(ap_at.values())))
        all_tp, all_pred, all_found = all_tp + class_tp, all_pred + class_pred, all_found + class_found
        per_class[name] = {
            "map50": ap50,
            "map50_95": ap,
            "precision": class_tp / class_pred if class_pred else None,
            "recall": class_found / n_truth if n_truth else None,
            "truths": n_truth,
        }
        if n_truth:
            for thr in IOU_THRESHOLDS:
                aps[thr].append(ap_at[float(thr)])
    map50 = float(np.mean(aps[0.5])) if aps[0.5] else 0.0
    map50_95 = float(np.mean([np.mean(v) for v in aps.values() if v])) if aps[0.5] else 0.0
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
            "only_in_data": [c for c in classes if c not in set(model_classes)],
            "only_in_model": [c for c in model_classes if c not in set(classes)],
        },
        confusion=_confusion(truths, predictions, conf),
    )


def _confusion(
    truths: Sequence[Truth],
    predictions: Sequence[tuple[FloatArray, FloatArray, tuple[str, ...]]],
    conf: float,
) -> dict[str, dict[str, int]]:
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


def evaluate(model: Path, folder: Path, *, split: str | None = None, imgsz: int = 640, conf: float = 0.25,
             backend: str = "onnx", out: Path | None = None) -> Evaluation:  # fmt: skip
    """Run ``model`` over a labelled folder and score it; with ``out``, also write plots and examples."""
    from PIL import Image

    from plastic_hotspots.detector.predictor import YoloDetector
    from plastic_hotspots.detector.settings import DetectorSettings

    truths, classes = read_folder(folder, split)
    if not truths:
        raise TrainingError(f"no images in {folder}", hint="point --data at a YOLO folder")
    det = YoloDetector(model, DetectorSettings(backend=backend, imgsz=imgsz, conf=0.001, iou=0.6))
    names = det.names
    predictions = []
    for truth in truths:
        with Image.open(truth.image) as img:
            rgb = np.asarray(img.convert("RGB"))
        (raw,) = det.predict_raw([rgb])
        predictions.append((raw.boxes, raw.scores, tuple(names[int(c)] for c in raw.classes)))
    result = evaluate_predictions(truths, predictions, classes, [names[k] for k in sorted(names)], conf)
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


Predictions = Sequence[tuple[FloatArray, FloatArray, tuple[str, ...]]]


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
