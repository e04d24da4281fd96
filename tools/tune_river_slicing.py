"""Choose the sliced-inference settings for bridge cameras over rivers, on labelled river frames.

Floating litter seen from a bridge is small (tens of pixels in a 1920-px frame), so ``detect`` cuts frames
into overlapping slices. This runs ``evaluate`` as ``detect`` runs (class-agnostic: every class is one
"litter" class) over a grid of slice size, overlap and model input size, prints AP50 for each, then, at the
best setting, precision, recall and F1 at a few score thresholds. The frames are for validation only: the
settings are chosen here, the model is never fitted to them.

    python tools/tune_river_slicing.py ../shared/data/river_floating_jakarta [--model weights.pt]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

from plastic_hotspots.detector.settings import DetectorSettings
from plastic_hotspots.training.evaluate import evaluate

SLICES = (0, 320, 480, 640)
OVERLAPS = (0.2, 0.35)
IMGSZ = (640,)
THRESHOLDS = (0.05, 0.1, 0.15, 0.25)


def main() -> None:
    """Print the grid and the chosen setting (JSON on the last line)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("frames", type=Path, help="YOLO folder of labelled river frames")
    parser.add_argument("--model", type=Path, default=None, help="weights (default: detect's default model)")
    parser.add_argument("--backend", default="openvino")
    args = parser.parse_args()
    rows = []
    for slice_size, overlap, imgsz in itertools.product(SLICES, OVERLAPS, IMGSZ):
        if slice_size == 0 and overlap != OVERLAPS[0]:
            continue  # no slicing: overlap does not apply
        size = imgsz if slice_size else 1280  # unsliced: the whole frame at 1280
        settings = DetectorSettings(
            backend=args.backend, imgsz=size, slice_size=slice_size, slice_overlap=overlap
        )
        start = time.perf_counter()
        result = evaluate(args.model, args.frames, settings=settings, agnostic=True)
        seconds = time.perf_counter() - start
        rows.append({"slice_size": slice_size, "overlap": overlap, "imgsz": size, "ap50": result.map50,
                     "ap50_95": result.map50_95, "seconds": round(seconds, 1)})  # fmt: skip
        print(f"slice {slice_size:4d} overlap {overlap:.2f} imgsz {size:4d}: AP50 {result.map50:.3f} "
              f"AP50-95 {result.map50_95:.3f} ({seconds:.0f} s)", flush=True)  # fmt: skip
    best = max(rows, key=lambda r: (r["ap50"], -r["seconds"]))
    settings = DetectorSettings(
        backend=args.backend,
        imgsz=best["imgsz"],
        slice_size=best["slice_size"],
        slice_overlap=best["overlap"],
    )
    scores = []
    for conf in THRESHOLDS:
        result = evaluate(args.model, args.frames, settings=settings, agnostic=True, conf=conf)
        f1 = 2 * result.precision * result.recall / max(result.precision + result.recall, 1e-12)
        scores.append({"conf": conf, "precision": result.precision, "recall": result.recall, "f1": f1})
        print(f"score >= {conf:.2f}: precision {result.precision:.3f} recall {result.recall:.3f} F1 {f1:.3f}")
    chosen = max(scores, key=lambda s: s["f1"])
    print(json.dumps({"grid": rows, "best": best, "thresholds": scores, "conf": chosen["conf"]}))


if __name__ == "__main__":
    main()
