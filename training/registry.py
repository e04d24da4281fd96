"""The model registry: every trained model with what it was trained on and how well it does.

A registered model lives in ``<registry>/<name>-<sha12>/``: the weights, their ONNX and OpenVINO exports,
``metrics.json`` (evaluation on named data), ``record.json`` (weights hash, dataset version and manifest
hash, training parameters, code version) and a generated ``MODEL_CARD.md``. The default model that
``detect`` uses is replaced only by :func:`promote`, and only when the candidate beats it on the same
evaluation data.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plastic_hotspots.geoio import atomic_path
from plastic_hotspots.provenance import file_sha256, make_provenance
from plastic_hotspots.training.errors import TrainingError
from plastic_hotspots.training.evaluate import Evaluation, evaluate


def registry_root() -> Path:
    """``<project cache>/registry``."""
    from plastic_hotspots.detector.yolo import cache_root

    return cache_root() / "registry"


@dataclass(frozen=True, slots=True)
class Registered:
    """A model in the registry."""

    folder: Path
    weights: Path
    sha256: str
    metrics: Evaluation


def _card(name: str, sha: str, names: dict[int, str], metrics: Evaluation, record: dict[str, Any]) -> str:
    per_class = "\n".join(
        f"| {c} | {v['truths']} | {v['map50']:.3f} | {v['map50_95']:.3f} |"
        for c, v in metrics.per_class.items()
        if v.get("truths")
    )
    missing = [n for n in names.values() if not metrics.per_class.get(n, {}).get("truths")]
    return f"""# Model card: {name}

| | |
| --- | --- |
| weights sha256 | `{sha}` |
| classes | {", ".join(names[k] for k in sorted(names))} |
| trained on | dataset `{record.get("dataset_version")}` (manifest sha256 `{record.get("manifest_sha256")}`) |
| evaluated on | `{record.get("evaluated_on")}` ({metrics.images} images, {metrics.truths} boxes) |
| mAP50 / mAP50-95 | {metrics.map50:.3f} / {metrics.map50_95:.3f} |
| licence | AGPL-3.0 (Ultralytics) |

## Intended use

Detecting street and riverbank litter in ground-level photos for volunteer pre-labels and litter surveys.

## Per class (evaluation data)

| class | boxes | AP50 | AP50-95 |
| --- | ---: | ---: | ---: |
{per_class}

## Limits

Classes without evaluation boxes are unmeasured: {", ".join(missing) or "none"}. Scores are for data like the
evaluation data; measure on your own labelled photos before relying on counts.
"""


def register(
    weights: Path,
    eval_data: Path,
    *,
    split: str | None = None,
    dataset: Path | None = None,
    parameters: dict[str, Any] | None = None,
    root: Path | None = None,
    name: str = "litter",
) -> Registered:
    """Evaluate ``weights`` on ``eval_data`` and store everything about it in the registry."""
    from plastic_hotspots.detector.predictor import YoloDetector
    from plastic_hotspots.detector.settings import DetectorSettings

    weights = Path(weights)
    if not weights.is_file():
        raise TrainingError(f"{weights} does not exist", hint="pass the best.pt of a training run")
    sha = file_sha256(weights)
    folder = (root or registry_root()) / f"{name}-{sha[:12]}"
    folder.mkdir(parents=True, exist_ok=True)
    stored = folder / "weights.pt"
    if not stored.is_file():
        shutil.copyfile(weights, stored)
    metrics = evaluate(stored, eval_data, split=split, backend="onnx")
    # Makes the ONNX and OpenVINO exports.
    names = YoloDetector(stored, DetectorSettings(backend="openvino", imgsz=640)).names
    manifest = dataset / "manifest.json" if dataset else None
    record = {
        "weights_sha256": sha,
        "dataset_version": json.loads(manifest.read_text())["version"]
        if manifest and manifest.is_file()
        else None,
        "manifest_sha256": file_sha256(manifest) if manifest and manifest.is_file() else None,
        "evaluated_on": f"{eval_data}{'/' + split if split else ''}",
        "parameters": parameters or {},
        "provenance": json.loads(
            make_provenance("plastic_hotspots.training.registry", inputs=[str(weights)]).to_json()
        ),
    }
    with atomic_path(folder / "metrics.json") as tmp:
        tmp.write_text(metrics.to_json(), encoding="utf-8")
    with atomic_path(folder / "record.json") as tmp:
        tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    with atomic_path(folder / "MODEL_CARD.md") as tmp:
        tmp.write_text(_card(folder.name, sha, names, metrics, record), encoding="utf-8")
    return Registered(folder, stored, sha, metrics)


@dataclass(frozen=True, slots=True)
class Promotion:
    """The outcome of a promotion attempt."""

    promoted: bool
    candidate: float
    current: float | None
    default: Path


def promote(
    candidate: Path, eval_data: Path, *, split: str | None = None, metric: str = "map50_95"
) -> Promotion:
    """Make ``candidate`` the default model if it beats the current default on the same data.

    The current default is evaluated again on ``eval_data`` (never compared with figures from other data).
    """
    from plastic_hotspots.detector.yolo import BASELINE_NAME, cache_root, default_model_path

    target = cache_root() / "models" / BASELINE_NAME
    try:
        current_path: Path | None = default_model_path()
    except Exception:  # no default at all: any model is better than none
        current_path = None
    new = float(getattr(evaluate(candidate, eval_data, split=split), metric))
    old = float(getattr(evaluate(current_path, eval_data, split=split), metric)) if current_path else None
    better = old is None or new > old
    if better:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            shutil.copyfile(candidate, tmp)
    return Promotion(better, new, old, target if better else (current_path or target))
