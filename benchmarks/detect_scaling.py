"""Scaling of ``detect`` over Dask workers: images/s with 1 worker against 2 workers, one thread each.

The same photos, model, backend and chunks go through ``run_detection`` on a local Dask cluster
(``detect --workers N --threads-per-worker 1``) of 1 and then 2 worker processes, each held to one
thread (inference, decoding and the numerical libraries). Cluster start-up and the workers' model
loading are left out: each cluster is warmed up on a few photos first, so every worker has loaded the
model before the clock starts. The client (this process) discovers the inputs, commits the parts and
merges the outputs inside the timed run, as ``detect`` does.

The measurements alternate in rounds (1 worker, 2 workers, then 2, 1, ...) and the medians are
compared, so that a slow spell of a shared machine does not land on one of them only. Also printed,
for context: the same run in one process with no cluster (all cores to the backend). Each measurement
also says how many cores other processes kept busy meanwhile (from /proc/stat, less this run's own
processes): measurements taken beside other work are marked ``busy`` and left out of the medians, as
long as each kind has undisturbed ones (run more ``--rounds`` on a shared machine).

It prints the rate of each and 2-worker / 1-worker (goal >= 1.7 on a 2-core machine). The model is
untrained (built from the YOLO11n YAML): speed does not depend on the weights, and no weights are
downloaded.

The default 240 photos in chunks of 8 make 30 chunks, which two workers share evenly (15 each), as they
share the thousands of chunks of a real survey; with an odd number of chunks, one worker's last chunk
would run alone at the end and cost the 2-worker rate up to half a chunk.

    python benchmarks/detect_scaling.py --images 240 --imgsz 640 --backend openvino
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from detect_speed import rate, write_survey

from plastic_hotspots.cluster import ClusterOptions, open_cluster
from plastic_hotspots.detector.ingest import IngestOptions
from plastic_hotspots.detector.run import RunOptions, RunSummary, run_detection

GOAL = 1.7
BUSY_CORES = 0.1  # other processes using more than this many cores make a measurement "busy"


def machine_busy_s() -> float:
    """CPU seconds all processes of this machine have used since boot (Linux /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_s(pids: list[int]) -> float:
    """CPU seconds used by the given processes so far."""
    import psutil

    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def rss_mib() -> float:
    """Resident set size of the calling process, MiB (run on each worker)."""
    import psutil

    return float(psutil.Process().memory_info().rss / 2**20)


def main() -> None:
    """Run the alternating measurements and print the rates and the ratio."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--backend", default="openvino", choices=["onnx", "openvino", "pytorch"])
    parser.add_argument("--photo-size", default="1280x960", help="photo width x height")
    parser.add_argument(
        "--chunk-size", type=int, default=8, help="images per chunk (one task); default: 30 chunks"
    )
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are reported")
    parser.add_argument("--no-single", action="store_true", help="skip the one-process context figure")
    args = parser.parse_args()
    width, height = (int(v) for v in args.photo_size.split("x"))

    from plastic_hotspots.detector.predictor import YoloDetector
    from plastic_hotspots.detector.yolo import apply_offline_settings, build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="detect-scaling-"))
    try:
        config_dir = work / "ultralytics"
        apply_offline_settings(config_dir)
        weights = build_tiny_model(
            work / "tiny.pt", {0: "bottle", 1: "bag_film", 2: "other"}, config_dir=config_dir
        )
        write_survey(work / "photos", args.images, (width, height))
        warm = work / "warm-up"  # a few photos each worker sees before the clock starts
        warm.mkdir()
        for p in sorted((work / "photos").iterdir())[:8]:
            shutil.copy(p, warm / p.name)
        print(
            f"{args.images} photos {width}x{height}, imgsz {args.imgsz}, backend {args.backend}, "
            f"chunks of {args.chunk_size}, batch {args.batch_size}, {os.cpu_count()} CPUs"
        )
        # Built here once: exports the model (cached beside the weights, where the workers find it) and
        # gives the run its class names and model version, as `detect` does.
        detector = YoloDetector(
            weights,
            backend=args.backend,
            imgsz=args.imgsz,
            conf=0.25,
            config_dir=config_dir,
            batch=args.batch_size,
        )
        ingest = IngestOptions(decode_size=args.imgsz)  # as `detect` sets it
        worker_rss: list[float] = []
        run = RunOptions(chunk_size=args.chunk_size, batch_size=args.batch_size)

        others: dict[str, list[float]] = {}
        client: dict[str, list[float]] = {}

        def timed(label: str, pids: list[int], job: Callable[[], RunSummary]) -> float:
            """Run ``job``; return images/s, and note how many cores other processes used meanwhile."""
            busy0, own0, t0 = machine_busy_s(), own_cpu_s(pids), time.perf_counter()
            mine0 = own_cpu_s(pids[:1])
            summary = job()
            seconds = time.perf_counter() - t0
            other_s = (machine_busy_s() - busy0) - (own_cpu_s(pids) - own0)
            others.setdefault(label, []).append(max(0.0, other_s) / seconds)
            client.setdefault(label, []).append((own_cpu_s(pids[:1]) - mine0) / seconds)
            if summary.images != args.images or summary.rejected:
                raise SystemExit(f"the run used {summary.images} photos and rejected {summary.rejected}")
            return rate(summary.images, seconds)

        def measure(workers: int | None, k: int) -> float:
            out = work / f"out-{workers}-{k}" / "detections.parquet"
            if workers is None:
                run_detection([warm], work / f"warm-{k}" / "d.parquet", detector, ingest=ingest, run=run)
                return timed(
                    "one process",
                    [os.getpid()],
                    lambda: run_detection([work / "photos"], out, detector, ingest=ingest, run=run),
                )
            label = f"{workers} worker{'s' if workers > 1 else ''}"
            options = ClusterOptions(workers=workers, threads_per_worker=1)
            with open_cluster(options) as cluster:
                one_each = RunOptions(chunk_size=1, batch_size=args.batch_size)  # every worker loads
                run_detection(
                    [warm], work / f"warm-{workers}-{k}" / "d.parquet", detector,
                    ingest=ingest, run=one_each, cluster=cluster,
                )  # fmt: skip
                pids = [os.getpid(), *cluster.run_on_workers(os.getpid).values()]
                result = timed(
                    label,
                    pids,
                    lambda: run_detection(
                        [work / "photos"], out, detector, ingest=ingest, run=run, cluster=cluster
                    ),
                )
                worker_rss.extend(cluster.run_on_workers(rss_mib).values())
            return result

        rates: dict[str, list[float]] = {"1 worker": [], "2 workers": [], "one process": []}
        for k in range(args.rounds):
            order = (1, 2) if k % 2 == 0 else (2, 1)
            for n in order:
                rates[f"{n} worker{'s' if n > 1 else ''}"].append(measure(n, k))
            if not args.no_single:
                rates["one process"].append(measure(None, k))
            shown = [name for name in rates if rates[name]]
            print(
                f"round {k + 1}: "
                + ", ".join(
                    f"{name} {rates[name][-1]:.2f}"
                    + (
                        f" (busy: others used {others[name][-1]:.2f} cores)"
                        if others[name][-1] > BUSY_CORES
                        else ""
                    )
                    for name in shown
                )
                + " img/s"
            )
        # Medians over the measurements no other process disturbed, where each kind has some.
        clean = {
            name: [r for r, o in zip(values, others[name], strict=True) if o <= BUSY_CORES]
            for name, values in rates.items()
            if values
        }
        use_clean = all(clean.values())
        med = {name: statistics.median(clean[name] if use_clean else rates[name]) for name in clean}
        print(
            "medians over the undisturbed measurements ("
            + ", ".join(f"{name}: {len(clean[name])} of {len(rates[name])}" for name in clean)
            + ")"
            if use_clean
            else "medians over all measurements (too few were undisturbed)"
        )
        print(f"1 worker,  1 thread:            {med['1 worker']:6.2f} img/s (median)")
        print(f"2 workers, 1 thread each:       {med['2 workers']:6.2f} img/s (median)")
        if "one process" in med:
            print(f"one process, no cluster:        {med['one process']:6.2f} img/s (median, context)")
        print(
            "this process (scheduler, commits, merge) used "
            + ", ".join(
                f"{statistics.median(client[name]):.2f} cores with {name}"
                for name in client
                if "worker" in name
            )
        )
        print(f"worker resident memory after a run: {min(worker_rss):.0f}-{max(worker_rss):.0f} MiB")
        ratio = med["2 workers"] / med["1 worker"]
        verdict = "PASS" if ratio >= GOAL else "MISS"
        print(f"2 workers / 1 worker = {ratio:.2f}  (goal >= {GOAL:.2f}): {verdict}")
        if not use_clean:
            busiest = max(max(values) for values in others.values())
            print(
                f"WARNING: other processes kept up to {busiest:.2f} cores busy during the measurements: "
                "run again on an idle machine"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
