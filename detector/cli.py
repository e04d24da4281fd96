"""Subcommands of the detector stage: ``detect``."""

from __future__ import annotations

import warnings
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from plastic_hotspots.detector.settings import BackendFallbackWarning, DetectorSettings, TrackingSettings

console = Console(stderr=True)
DEFAULTS = DetectorSettings()  # the options' defaults are the settings' own
TRACKING = TrackingSettings()

# How the model runs, as options: shared by `detect` and `evaluate` (one meaning, one default).
ModelOption = Annotated[
    Path | None, typer.Option("--model", "-m", help="YOLO weights (.pt); default: the registered model.")
]
BackendOption = Annotated[
    str,
    typer.Option(
        help="auto (OpenVINO on the CPU, PyTorch on a CUDA GPU; PyTorch when openvino is missing), "
        "pytorch, onnx or openvino (exported once, cached)."
    ),
]
PrecisionOption = Annotated[
    str,
    typer.Option(
        help="auto (bf16 where the CPU has it, else fp32), fp32, bf16 or int8 (quantized once on "
        "training photos, cached); bf16 and int8 on OpenVINO only."
    ),
]
ImgszOption = Annotated[int, typer.Option(help="Model input size in pixels.")]
DeviceOption = Annotated[str, typer.Option(help="cpu, or a CUDA device such as 0.")]
SliceSizeOption = Annotated[
    int, typer.Option(help="Tile size for sliced inference of large images (0: never slice).")
]
SliceOverlapOption = Annotated[float, typer.Option(help="Overlap between tiles, as a fraction.")]


def detect(
    sources: Annotated[
        list[Path], typer.Argument(help="Image, video or GeoTIFF files and folders (recursive).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Detections GeoParquet to write.")] = Path(
        "detections.parquet"
    ),
    model: ModelOption = None,
    backend: BackendOption = DEFAULTS.backend,
    precision: PrecisionOption = DEFAULTS.precision,
    imgsz: ImgszOption = DEFAULTS.imgsz,
    conf: Annotated[float, typer.Option(help="Minimum detection score.")] = DEFAULTS.conf,
    iou: Annotated[float, typer.Option(help="IoU threshold of non-maximum suppression.")] = DEFAULTS.iou,
    device: DeviceOption = DEFAULTS.device,
    slice_size: SliceSizeOption = DEFAULTS.slice_size,
    slice_overlap: SliceOverlapOption = DEFAULTS.slice_overlap,
    sidecar: Annotated[
        Path | None, typer.Option(help="CSV or GeoJSON of image positions (columns image, lon, lat).")
    ] = None,
    gpx: Annotated[Path | None, typer.Option(help="GPX track that geotags video frames.")] = None,
    every_s: Annotated[float, typer.Option(help="Sample a video frame every N seconds.")] = 1.0,
    every_m: Annotated[float | None, typer.Option(help="...and only after moving N metres.")] = None,
    clock_offset_s: Annotated[
        float, typer.Option(help="Seconds to add to video time to match the GPX.")
    ] = 0.0,
    video_start: Annotated[
        datetime | None, typer.Option(help="Video start time (default: from the file's metadata).")
    ] = None,
    track_items: Annotated[
        bool,
        typer.Option(
            help="Follow items through each video (ByteTrack) and count each once, at the frame where "
            "it was best seen; writes <out>.tracks.parquet and unique_items."
        ),
    ] = TRACKING.enabled,
    track_every_s: Annotated[
        float, typer.Option(help="Seconds between the frames the tracker sees (denser than --every-s).")
    ] = TRACKING.every_s,
    resume: Annotated[
        bool,
        typer.Option(
            help="Continue an interrupted run into the same output, or add to a finished one only the "
            "images it has not seen."
        ),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(help="Replace a finished run in --out, or discard an interrupted one and start again."),
    ] = False,
    gpkg: Annotated[bool, typer.Option(help="Also write a GeoPackage for QGIS.")] = False,
    tile_size: Annotated[int, typer.Option(help="Tile size in pixels for reading GeoTIFF rasters.")] = 2048,
    decode_threads: Annotated[
        int, typer.Option(help="Threads reading images ahead of the model (0: between model calls).")
    ] = 1,
    batch_size: Annotated[int, typer.Option(help="Images per model call.")] = 8,
    chunk_size: Annotated[
        int, typer.Option(help="Images per committed chunk (one task on a Dask worker).")
    ] = 256,
    workers: Annotated[
        int,
        typer.Option(help="Dask worker processes on this machine, each loading the model once (1: none)."),
    ] = 1,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Address of an existing Dask scheduler (tcp://host:8786) whose workers do the work."
        ),
    ] = None,
    threads_per_worker: Annotated[
        int, typer.Option(help="Threads of each local Dask worker (inference and decoding).")
    ] = 1,
    scheduler_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the scheduler to answer and a worker to join.")
    ] = 10.0,
) -> None:
    """Detect litter in geotagged photos, video frames and GeoTIFF tiles; write GeoParquet.

    Exit code 0: every input was used; 3: some inputs were rejected (see the .rejects.csv).
    """
    from plastic_hotspots.cluster import check_workers_or_scheduler, optional_cluster
    from plastic_hotspots.detector.ingest import IngestOptions, check_position_files
    from plastic_hotspots.detector.predictor import YoloDetector
    from plastic_hotspots.detector.run import RunOptions, run_detection
    from plastic_hotspots.detector.yolo import cache_root, default_model_path
    from plastic_hotspots.geoio import check_output_file

    check_workers_or_scheduler(workers, scheduler)
    check_output_file(out, example="detections.parquet")
    settings = DetectorSettings(
        backend=backend, precision=precision, imgsz=imgsz, conf=conf, iou=iou, device=device,
        slice_size=slice_size, slice_overlap=slice_overlap,
    )  # fmt: skip
    tracking = TrackingSettings(enabled=track_items, every_s=track_every_s)
    ingest = IngestOptions(
        sidecar=sidecar,
        gpx=gpx,
        video_every_s=every_s,
        video_every_m=every_m,
        clock_offset_s=clock_offset_s,
        video_start=video_start,
        tile_size=tile_size,
        decode_size=imgsz if slice_size == 0 else 0,  # JPEGs decoded no larger than the model needs
    )
    check_position_files(ingest)
    run = RunOptions(
        chunk_size=chunk_size,
        batch_size=batch_size,
        decode_threads=decode_threads,
        resume=resume,
        overwrite=overwrite,
        gpkg=gpkg,
    )
    # The workers first: an unreachable scheduler fails fast, before the model is loaded.
    with optional_cluster(
        workers, scheduler, threads_per_worker=threads_per_worker, timeout_s=scheduler_timeout
    ) as cluster:
        weights = model or default_model_path()
        with warnings.catch_warnings():  # the choice is printed below, once
            warnings.simplefilter("ignore", BackendFallbackWarning)
            detector = YoloDetector(weights, settings, config_dir=cache_root() / "ultralytics")
        chosen = detector.settings
        console.print(
            f"backend: [bold]{chosen.backend}[/], precision: [bold]{chosen.precision}[/]"
            + (f", device {chosen.device}" if chosen.device not in ("cpu", "CPU") else "")
            + f" ({escape(detector.choice)})",
            style="yellow" if "not installed" in detector.choice else None,
        )
        summary = run_detection(
            sources, out, detector, ingest=ingest, run=run, parameters=detector.parameters(), cluster=cluster,
            tracking=tracking,
        )  # fmt: skip
    console.print(
        f"[bold green]{summary.images} images, {summary.detections} detections[/]"
        + (f", [bold yellow]{summary.rejected} rejected[/]" if summary.rejected else "")
    )
    for name, path in summary.outputs.items():
        typer.echo(f"{name + ':':11} {path}")
    raise typer.Exit(summary.exit_code)


def register(app: typer.Typer) -> None:
    """Add the detector stage's subcommands to the command line."""
    app.command("detect")(detect)
