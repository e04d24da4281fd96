"""Speed and accuracy of ``detect``'s precisions (auto, fp32, bf16, int8) on OpenVINO, in one run.

The shipped model (YOLOv8s, imgsz 640) in each precision:

* model only: the OpenVINO model alone on letterboxed inputs already in memory (img/s);
* end to end: ``run_detection`` (discover, decode, EXIF, inference, GeoParquet writing) over generated
  JPEG photos with EXIF GPS (img/s);
* mAP50: on the held-out test split of ``trash_collection_self`` (the split the shipped model was not
  trained on, which int8 is not calibrated on), with ``training.evaluate``'s matching and AP.

Speeds are measured in alternating rounds (every precision once per round) and the medians compared as
ratios to fp32 (the median of each round's ratio to the same round's fp32), so a slow spell of a shared
machine hits all of them. ``--pytorch`` adds the old default (PyTorch on the CPU) end to end, for context.
bf16 is left out where the CPU has no bf16. The CPU's model and its avx2/avx512/bf16/amx flags are printed.

    python benchmarks/detect_precision.py --images 24 --rounds 5 --model-calls 16 --pytorch
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detect_speed import rate, write_survey

from plastic_hotspots.detector.ingest import IngestOptions
from plastic_hotspots.detector.run import run_detection


def cpu_description() -> str:
    """The CPU model and its flags that matter for bf16 and int8 (from ``lscpu``)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"
    model = next(
        (ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("Model name")), "?"
    )
    flags_line = next((ln for ln in text.splitlines() if ln.startswith("Flags")), "")
    flags = set(flags_line.split(":", 1)[-1].split())
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    present = [f for f in wanted if f in flags]
    return f"{model}; flags: {' '.join(present) or 'none of ' + ' '.join(wanted)}"


def held_out(shared: Path) -> tuple[list[Any], list[np.ndarray[Any, Any]]]:
    """The test split's truths (classes mapped to the taxonomy) and its photos as RGB arrays."""
    from plastic_hotspots.detector.calibration import LITTER_DATASET, litter_split
    from plastic_hotspots.training.baseline import TRASH_COLLECTION_CLASSES
    from plastic_hotspots.training.evaluate import Truth, read_folder

    test = set(litter_split(shared, "test"))
    truths, _ = read_folder(shared / LITTER_DATASET)
    mapped = [
        Truth(t.image, t.boxes, tuple(TRASH_COLLECTION_CLASSES[n] for n in t.names))
        for t in truths
        if t.image in test
    ]
    images = []
    for t in mapped:
        with Image.open(t.image) as img:
            images.append(np.asarray(img.convert("RGB")))
    return mapped, images


def map50(detector: Any, truths: list[Any], images: list[np.ndarray[Any, Any]]) -> float:
    """mAP50 of a detector (made with conf 0.001) on the held-out photos."""
    from plastic_hotspots.training.evaluate import evaluate_predictions

    names = detector.names
    preds = []
    for raw in detector.predict_raw(images):
        preds.append((raw.boxes, raw.scores, tuple(names[int(c)] for c in raw.classes)))
    classes = sorted({n for t in truths for n in t.names})
    return evaluate_predictions(truths, preds, classes, [names[k] for k in sorted(names)]).map50


def main() -> None:
    """Measure every precision and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=60, help="generated photos for the end-to-end rate")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model-calls", type=int, default=40, help="inferences per model-only measurement")
    parser.add_argument("--pytorch", action="store_true", help="also PyTorch on the CPU end to end")
    args = parser.parse_args()

    from plastic_hotspots.detector.calibration import calibration_tensors, litter_split, shared_data_dir
    from plastic_hotspots.detector.predictor import YoloDetector
    from plastic_hotspots.detector.runtime import OpenVinoRuntime, openvino_cpu_capabilities
    from plastic_hotspots.detector.settings import DetectorSettings
    from plastic_hotspots.detector.yolo import apply_offline_settings, shipped_model_path

    apply_offline_settings()
    shared = shared_data_dir()
    if shared is None:
        raise SystemExit("the shared data (trash_collection_self) is needed for the held-out mAP50")
    caps = openvino_cpu_capabilities() or frozenset()
    weights = shipped_model_path()
    precisions = ["fp32", *(["bf16"] if "BF16" in caps else []), "int8"]
    print(f"CPU: {cpu_description()}")
    print(f"OpenVINO OPTIMIZATION_CAPABILITIES: {' '.join(sorted(caps))}")
    print(f"model {weights.name}, imgsz {args.imgsz}; machine shared with other jobs while measured")

    settings = DetectorSettings(imgsz=args.imgsz)
    auto = YoloDetector(weights, settings)
    print(f"auto -> {auto.settings.backend} {auto.settings.precision} ({auto.choice})")
    detectors: dict[str, Any] = {"auto": auto}
    for p in precisions:
        t0 = time.perf_counter()
        detectors[p] = YoloDetector(weights, settings, backend="openvino", precision=p)
        print(f"{p}: loaded in {time.perf_counter() - t0:.1f} s")
    if detectors["int8"].calibration:
        print(f"int8 calibration: {detectors['int8'].calibration}")
    if args.pytorch:
        detectors["pytorch (old default)"] = YoloDetector(
            weights, settings, backend="pytorch", precision="fp32"
        )

    # Model only: the compiled OpenVINO models on letterboxed inputs.
    entry = next((weights.with_name(weights.stem + ".exports")).glob(f"*-onnx-{args.imgsz}"))
    xml = {"fp32": entry / "model_openvino.xml", "bf16": entry / "model_openvino.xml"}
    xml["int8"] = entry / "model_openvino_int8.xml"
    runtimes = {p: OpenVinoRuntime(xml[p], precision=p) for p in precisions}
    runtimes["auto"] = runtimes[auto.settings.precision] if auto.settings.backend == "openvino" else None
    photos_cal = tuple(litter_split(shared, "val")[:8])
    tensors = calibration_tensors(photos_cal, args.imgsz)

    work = Path(tempfile.mkdtemp(prefix="precision-bench-"))
    try:
        write_survey(work / "photos", args.images, (1280, 960))
        ingest = IngestOptions(decode_size=args.imgsz)
        for name, det in detectors.items():  # warm-up: first-call costs are not per-image costs
            run_detection([work / "photos"], work / f"warm-{name[:7]}" / "d.parquet", det, ingest=ingest)
        model_rates: dict[str, list[float]] = {n: [] for n in runtimes if runtimes[n] is not None}
        e2e_rates: dict[str, list[float]] = {n: [] for n in detectors}
        for k in range(args.rounds):
            for name, rt in runtimes.items():
                if rt is None:
                    continue
                t0 = time.perf_counter()
                for i in range(args.model_calls):
                    rt(tensors[i % len(tensors)])
                model_rates[name].append(rate(args.model_calls, time.perf_counter() - t0))
            for name, det in detectors.items():
                t0 = time.perf_counter()
                summary = run_detection(
                    [work / "photos"], work / f"out{k}-{name[:7]}" / "d.parquet", det, ingest=ingest
                )
                e2e_rates[name].append(rate(summary.images, time.perf_counter() - t0))
            print(
                f"round {k + 1}: model "
                + ", ".join(f"{n} {v[-1]:.2f}" for n, v in model_rates.items())
                + " | end to end "
                + ", ".join(f"{n} {v[-1]:.2f}" for n, v in e2e_rates.items())
                + " img/s"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    truths, images = held_out(shared)
    maps: dict[str, float] = {}
    for p in precisions:
        maps[p] = map50(YoloDetector(weights, settings, backend="openvino", precision=p, conf=0.001, iou=0.6),
                        truths, images)  # fmt: skip
    print(f"held-out: {len(truths)} photos, {sum(len(t.names) for t in truths)} boxes (test split)")

    # Each round's rate over the same round's fp32 rate, then the median of those ratios: a slow spell of
    # the shared machine cancels within a round.
    med_model = {n: statistics.median(v) for n, v in model_rates.items()}
    med_e2e = {n: statistics.median(v) for n, v in e2e_rates.items()}
    ratio_model = {
        n: statistics.median(a / b for a, b in zip(v, model_rates["fp32"], strict=True))
        for n, v in model_rates.items()
    }
    ratio_e2e = {
        n: statistics.median(a / b for a, b in zip(v, e2e_rates["fp32"], strict=True))
        for n, v in e2e_rates.items()
    }
    print()
    print("| precision | model img/s | model / fp32 | end-to-end img/s | end-to-end / fp32 ", end="")
    print("| mAP50 | mAP50 - fp32 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, det in detectors.items():
        resolved = det.settings.precision
        mp = maps.get(resolved) if det.settings.backend == "openvino" else None
        label = f"auto ({det.settings.backend} {resolved})" if name == "auto" else name
        model = f"{med_model[name]:.2f} | {ratio_model[name]:.2f}" if name in med_model else "- | -"
        acc = f"{mp:.3f} | {mp - maps['fp32']:+.3f}" if mp is not None else "- | -"
        print(f"| {label} | {model} | {med_e2e[name]:.2f} | {ratio_e2e[name]:.2f} | {acc} |")
    print("img/s: medians over the rounds; ratios: medians of each round's ratio to that round's fp32")


if __name__ == "__main__":
    main()
