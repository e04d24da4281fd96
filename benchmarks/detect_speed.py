"""Speed of ``detect`` end to end against a plain Ultralytics PyTorch ``predict`` loop, in one run.

Three rates over the same photos (JPEG with EXIF GPS), model and imgsz:

* baseline: ``YOLO(weights).predict(path)`` per photo, PyTorch backend (how one would script it);
* pipeline: ``run_detection`` with the chosen backend: decode, EXIF, inference, GeoParquet writing;
* bare: the same backend's ``predict`` on photos already decoded in memory (inference alone).

It prints pipeline/baseline (goal >= 1.6) and pipeline/bare (goal >= 0.85: the pipeline adds almost
nothing). The model is untrained (built from the YOLO11n YAML): speed does not depend on the weights,
and no weights are downloaded.

    python benchmarks/detect_speed.py --images 500 --imgsz 640 --backend onnx
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from detector.ingest import IngestOptions
from detector.run import RunOptions, run_detection


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
        gps[2] = (int(lat), int(lat * 60) % 60, round(lat * 3600 % 60, 4))
        gps[4] = (int(lon), int(lon * 60) % 60, round(lon * 3600 % 60, 4))
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
    args = parser.parse_args()
    width, height = (int(v) for v in args.photo_size.split("x"))

    from detector.yolo import YoloDetector, apply_offline_settings, build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="detect-bench-"))
    try:
        config_dir = work / "ultralytics"
        apply_offline_settings(config_dir)
        weights = build_tiny_model(
            work / "tiny.pt", {0: "bottle", 1: "bag_film", 2: "other"}, imgsz=args.imgsz
        )
        photos = write_survey(work / "photos", args.images, (width, height))
        print(
            f"{args.images} photos {width}x{height}, imgsz {args.imgsz}, backend {args.backend}, "
            f"{os.cpu_count()} CPUs"
        )

        from ultralytics import YOLO

        plain = YOLO(str(weights))
        plain.predict(str(photos[0]), imgsz=args.imgsz, device="cpu", verbose=False)  # warm-up
        t0 = time.perf_counter()
        for p in photos:
            plain.predict(str(p), imgsz=args.imgsz, device="cpu", verbose=False)
        baseline = rate(len(photos), time.perf_counter() - t0)
        print(f"baseline  ultralytics pytorch predict loop: {baseline:6.2f} img/s")

        det = YoloDetector(
            weights,
            backend=args.backend,
            imgsz=args.imgsz,
            conf=0.25,
            config_dir=config_dir,
            batch=args.batch_size,
        )
        sample = [np.asarray(Image.open(p).convert("RGB")) for p in photos[: min(100, len(photos))]]
        det.predict(sample[:1])  # warm-up (the export, if any, happened in the constructor)
        t0 = time.perf_counter()
        for k in range(0, len(sample), args.batch_size):
            det.predict(sample[k : k + args.batch_size])
        bare = rate(len(sample), time.perf_counter() - t0)
        print(f"bare      {args.backend} inference on decoded arrays: {bare:6.2f} img/s")

        out = work / "out" / "detections.parquet"
        t0 = time.perf_counter()
        summary = run_detection(
            [work / "photos"],
            out,
            det,
            ingest=IngestOptions(),
            run=RunOptions(batch_size=args.batch_size, chunk_size=256, workers=2),
        )
        pipeline = rate(summary.images, time.perf_counter() - t0)
        if summary.images != len(photos) or summary.rejected:
            raise SystemExit(f"the run used {summary.images} photos and rejected {summary.rejected}")
        print(f"pipeline  detect end to end ({args.backend}):       {pipeline:6.2f} img/s")
        print(f"pipeline / baseline = {pipeline / baseline:.2f}  (goal >= 1.60)")
        print(f"pipeline / bare     = {pipeline / bare:.2f}  (goal >= 0.85)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
