"""Subcommands of the training stage: ``plastic-hotspots train`` and ``evaluate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def train(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder with data.yaml (from `annotate dataset`).")],
    start: Annotated[
        Path | None, typer.Option(help="Checkpoint to fine-tune (default: the current litter model).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the training run.")] = Path("runs"),
    epochs: Annotated[int, typer.Option(help="Most epochs (training stops early without progress).")] = 100,
    imgsz: Annotated[int, typer.Option(help="Training image size.")] = 640,
    batch: Annotated[int, typer.Option(help="Images per batch.")] = 16,
    device: Annotated[str, typer.Option(help="'cpu', a CUDA device such as 0, or 'auto'.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    patience: Annotated[int, typer.Option(help="Epochs without improvement before stopping.")] = 30,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
) -> None:
    """Train (or fine-tune) the litter detector offline; prints the best weights' path."""
    from detector.yolo import cache_root, default_model_path, train_yolo

    if device == "auto":
        from training.device import auto_device

        device = auto_device()
    best = train_yolo(
        dataset / "data.yaml", start or default_model_path(), out, epochs=epochs, imgsz=imgsz, batch=batch,
        device=device, seed=seed, patience=patience, resume=resume, config_dir=cache_root() / "ultralytics",
    )  # fmt: skip
    typer.echo(f"best weights: {best}")


def evaluate(
    model: Annotated[Path, typer.Option("--model", "-m", help="Weights (.pt) to evaluate.")],
    data: Annotated[Path, typer.Option(help="YOLO folder (images/, labels/, data.yaml with names).")],
    split: Annotated[str | None, typer.Option(help="Sub-folder of images/ and labels/, e.g. test.")] = None,
    json_out: Annotated[
        str | None, typer.Option("--json", help="Write the metrics as JSON here ('-': print).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for the confusion matrix and examples.")] = None,
    imgsz: Annotated[int, typer.Option(help="Model input size.")] = 640,
    conf: Annotated[float, typer.Option(help="Score threshold for precision, recall and the plots.")] = 0.25,
) -> None:
    """Score a model on a labelled folder, classes matched by name (mAP50, mAP50-95, per class, by size)."""
    from training.evaluate import evaluate as run

    result = run(model, data, split=split, imgsz=imgsz, conf=conf, out=out)
    if json_out == "-":
        typer.echo(result.to_json())
        return
    if json_out:
        Path(json_out).write_text(result.to_json(), encoding="utf-8")
    scores = f"mAP50 {result.map50:.3f}, mAP50-95 {result.map50_95:.3f}"
    typer.echo(f"{result.images} images, {result.truths} boxes: {scores}")


def register(app: typer.Typer) -> None:
    """Add the training stage's subcommands to the command line."""
    app.command("train")(train)
    app.command("evaluate")(evaluate)
