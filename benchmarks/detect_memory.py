"""Memory of ``detect`` over many images: resident memory must not grow with the number of images.

Runs ``run_detection`` over ``--images`` small geotagged photos and records the process's resident set
size (RSS) at every model call. Prints RSS after the first 10% of images, at the end, and the fitted
growth per 1,000 images over the last 90% (goal: flat, i.e. a few MiB at most across the run).

    python benchmarks/detect_memory.py --images 10000 --backend onnx --imgsz 160
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from detect_speed import write_survey

from plastic_hotspots.detector.ingest import IngestOptions
from plastic_hotspots.detector.run import RunOptions, run_detection
from plastic_hotspots.records import Detection


def rss_mib() -> float:
    """Resident set size of this process, MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Recording:
    """Wraps a detector; records (images seen, RSS) at each call."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.seen = 0
        self.samples: list[tuple[int, float]] = []

    @property
    def names(self) -> dict[int, str]:
        return self.inner.names  # type: ignore[attr-defined,no-any-return]

    @property
    def model_version(self) -> str:
        return self.inner.model_version  # type: ignore[attr-defined,no-any-return]

    def predict(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[list[Detection]]:
        out: list[list[Detection]] = self.inner.predict(images)  # type: ignore[attr-defined]
        self.seen += len(images)
        self.samples.append((self.seen, rss_mib()))
        return out


def main() -> None:
    """Run once and print the memory figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--imgsz", type=int, default=160)
    parser.add_argument("--backend", default="onnx", choices=["onnx", "openvino", "pytorch"])
    parser.add_argument("--photo-size", default="320x240")
    args = parser.parse_args()
    width, height = (int(v) for v in args.photo_size.split("x"))

    from plastic_hotspots.detector.predictor import YoloDetector
    from plastic_hotspots.detector.yolo import apply_offline_settings, build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="detect-mem-"))
    try:
        config_dir = work / "ultralytics"
        apply_offline_settings(config_dir)
        weights = build_tiny_model(
            work / "tiny.pt", {0: "bottle", 1: "bag_film", 2: "other"}, config_dir=config_dir
        )
        t0 = time.perf_counter()
        write_survey(work / "photos", args.images, (width, height))
        print(f"wrote {args.images} photos {width}x{height} in {time.perf_counter() - t0:.0f} s")
        det = Recording(YoloDetector(weights, backend=args.backend, imgsz=args.imgsz, config_dir=config_dir))
        start_rss = rss_mib()
        t0 = time.perf_counter()
        summary = run_detection(
            [work / "photos"],
            work / "out" / "detections.parquet",
            det,
            ingest=IngestOptions(decode_size=args.imgsz),
            run=RunOptions(),
        )  # type: ignore[arg-type]
        elapsed = time.perf_counter() - t0
        seen = np.array([s[0] for s in det.samples], dtype=np.float64)
        rss = np.array([s[1] for s in det.samples], dtype=np.float64)
        tenth = seen >= 0.1 * args.images
        slope = float(np.polyfit(seen[tenth], rss[tenth], 1)[0]) * 1000 if tenth.sum() > 2 else float("nan")
        speed = summary.images / elapsed
        print(f"{summary.images} images in {elapsed:.0f} s ({speed:.1f} img/s), {args.backend}")
        print(f"RSS before the run:        {start_rss:8.1f} MiB")
        print(f"RSS after 10% of images:   {rss[tenth][0]:8.1f} MiB")
        print(f"RSS after 100% of images:  {rss[-1]:8.1f} MiB")
        print(f"RSS peak during the run:   {rss.max():8.1f} MiB")
        growth = rss[-1] - rss[tenth][0]
        print(f"growth over the last 90%:  {growth:+8.1f} MiB; fitted {slope:+.3f} MiB per 1,000 images")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
