"""Speed of ``detect`` end to end against a plain Ultralytics PyTorch ``predict`` loop, in one run.

Three rates over the same photos (JPEG with EXIF GPS), model and imgsz:

* baseline: ``YOLO(weights).predict(path)`` per photo, PyTorch backend (how one would script it);
* pipeline: ``run_detection`` with the chosen backend: decode, EXIF, inference, GeoParquet writing;
* bare: the same backend's ``predict`` on the photos already decoded in memory (inference alone).

The three are measured in alternating rounds and the medians compared, so that a slow spell of a
shared machine does not land on one of them only.

It prints pipeline/baseline (goal >= 1.6) and pipeline/bare (goal >= 0.85: the pipeline adds almost
nothing). The model is untrained (built from the YOLO11n YAML): speed does not depend on the weights,
and no weights are downloaded.

    python benchmarks/detect_speed.py --images 500 --imgsz 640 --backend onnx
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from plastic_hotspots.detector.ingest import IngestOptions, discover, load
from plastic_hotspots.detector.run import RunOptions, run_detection


def _dms(value: float) -> tuple[float, float, float]:
    """Degrees, minutes, seconds (to 1/10000 s) of a positive angle; seconds always below 60."""
    units = round(value * 3600 * 10_000)
    degrees, rest = divmod(units, 3600 * 10_000)
    minutes, seconds = divmod(rest, 60 * 10_000)
    return float(degrees), float(minutes), seconds / 10_000


def write_survey(folder: Path, n: int, size: tuple[int, int], seed: int = 0) -> list[Path]:
    """``n`` street-like JPEG photos with EXIF GPS, ``size`` = (width, height)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    # One textured base frame, varied per photo so JPEG decode cost is realistic.
    base = rng.integers(0, 255, size=(h // 8, w // 8, 3), dtype=np.uint8)
    base_img = Image.fromarray(base).resize((w, h), Image.Resampling.BILINEAR)
    paths = []
    for i in range(n):
        img = base_img.rotate(float(rng.uniform(-3, 3)))
        exif = Image.Exif()
        gps = exif.get_ifd(0x8825)
        lat, lon = 20.2 + i * 1e-5, 100.1 + i * 1e-5
        gps[1], gps[3] = "N", "E"
        gps[2], gps[4] = _dms(lat), _dms(lon)
        path = folder / f"photo_{i:05d}.jpg"
        img.save(path, "JPEG", quality=88, exif=exif)
        paths.append(path)
    return paths


def rate(n: int, seconds: float) -> float:
    """Images per second."""
    return n / seconds if seconds > 0 else float("inf")


def main() -> None:
    """Run the three measurements and print the ratios."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--backend", default="onnx", choices=["onnx", "openvino", "pytorch"])
    parser.add_argument("--photo-size", default="1280x960", help="photo width x height")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are reported")
    args = parser.parse_args()
    width, height = (int(v) for v in args.photo_size.split("x"))

    from plastic_hotspots.detector.predictor import YoloDetector
    from plastic_hotspots.detector.yolo import apply_offline_settings, build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="detect-bench-"))
    try:
        config_dir = work / "ultralytics"
        apply_offline_settings(config_dir)
        weights = build_tiny_model(
            work / "tiny.pt", {0: "bottle", 1: "bag_film", 2: "other"}, config_dir=config_dir
        )
        photos = write_survey(work / "photos", args.images, (width, height))
        print(
            f"{args.images} photos {width}x{height}, imgsz {args.imgsz}, backend {args.backend}, "
            f"{os.cpu_count()} CPUs"
        )

        from ultralytics import YOLO

        plain = YOLO(str(weights))
        det = YoloDetector(
            weights,
            backend=args.backend,
            imgsz=args.imgsz,
            conf=0.25,
            config_dir=config_dir,
            batch=args.batch_size,
        )
        ingest = IngestOptions(decode_size=args.imgsz)  # as `detect` sets it
        # Bare inference: the same backend on the photos already decoded (as the pipeline decodes them).
        decoded = [load(item, ingest).image for item in discover([work / "photos"], ingest)]
        plain.predict(str(photos[0]), imgsz=args.imgsz, device="cpu", verbose=False)  # warm-up
        det.predict(decoded[:1])
        warm = work / "warm-up"  # first-call costs (imports, writers) are not per-image costs
        warm.mkdir()
        for p in photos[:8]:
            shutil.copy(p, warm / p.name)
        run_detection([warm], work / "warm-up-out" / "d.parquet", det, ingest=ingest)
        rates: dict[str, list[float]] = {"baseline": [], "bare": [], "pipeline": []}
        # Rounds alternate the three measurements so that a slow spell of the machine hits all three.
        for k in range(args.rounds):
            t0 = time.perf_counter()
            for p in photos:
                plain.predict(str(p), imgsz=args.imgsz, device="cpu", verbose=False)
            rates["baseline"].append(rate(len(photos), time.perf_counter() - t0))

            t0 = time.perf_counter()
            for i in range(0, len(decoded), args.batch_size):
                det.predict(decoded[i : i + args.batch_size])
            rates["bare"].append(rate(len(decoded), time.perf_counter() - t0))

            out = work / f"out{k}" / "detections.parquet"
            t0 = time.perf_counter()
            summary = run_detection(
                [work / "photos"], out, det, ingest=ingest, run=RunOptions(batch_size=args.batch_size)
            )
            rates["pipeline"].append(rate(summary.images, time.perf_counter() - t0))
            if summary.images != len(photos) or summary.rejected:
                raise SystemExit(f"the run used {summary.images} photos and rejected {summary.rejected}")
            print(
                f"round {k + 1}: baseline {rates['baseline'][-1]:.2f}, bare {rates['bare'][-1]:.2f}, "
                f"pipeline {rates['pipeline'][-1]:.2f} img/s"
            )
        med = {name: statistics.median(values) for name, values in rates.items()}
        print(f"baseline  ultralytics pytorch predict loop:      {med['baseline']:6.2f} img/s (median)")
        print(f"bare      {args.backend} inference on decoded arrays:  {med['bare']:6.2f} img/s (median)")
        print(f"pipeline  detect end to end ({args.backend}):          {med['pipeline']:6.2f} img/s (median)")
        print(f"pipeline / baseline = {med['pipeline'] / med['baseline']:.2f}  (goal >= 1.60)")
        print(f"pipeline / bare     = {med['pipeline'] / med['bare']:.2f}  (goal >= 0.85)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
