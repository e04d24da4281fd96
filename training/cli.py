"""Subcommands of the training stage: ``plastic-hotspots train`` and ``evaluate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def train(
    ctx: typer.Context,
    dataset: Annotated[Path, typer.Argument(help="Dataset folder with data.yaml (from `annotate dataset`).")],
    config: Annotated[
        Path | None, typer.Option(help="YAML file of settings; options given here win.")
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(help="Checkpoint (.pt) or model YAML to start from (default: the current model)."),
    ] = None,
    out: Annotated[str, typer.Option("--out", "-o", help="Folder for the training run.")] = "runs",
    epochs: Annotated[int, typer.Option(help="Most epochs (training stops early without progress).")] = 100,
    imgsz: Annotated[int, typer.Option(help="Training image size.")] = 640,
    batch: Annotated[int, typer.Option(help="Images per batch.")] = 16,
    device: Annotated[str, typer.Option(help="'cpu', a CUDA device such as 0, or 'auto'.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    patience: Annotated[int, typer.Option(help="Epochs without improvement before stopping.")] = 30,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
) -> None:
    """Train (or fine-tune) the litter detector offline; prints the best weights' path."""
    from plastic_hotspots.detector.yolo import cache_root, default_model_path, train_yolo
    from plastic_hotspots.training.config import TrainConfig

    given = {
        name: ctx.params[name]
        for name in ("start", "out", "epochs", "imgsz", "batch", "device", "seed", "patience")
        if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
    }
    settings = (TrainConfig.from_file(config) if config else TrainConfig()).override(given)
    chosen = settings.device
    if chosen == "auto":
        from plastic_hotspots.training.device import auto_device

        chosen = auto_device()
    best = train_yolo(
        dataset / "data.yaml", settings.start or default_model_path(), Path(settings.out),
        epochs=settings.epochs, imgsz=settings.imgsz, batch=settings.batch, device=chosen,
        seed=settings.seed, patience=settings.patience, resume=resume,
        config_dir=cache_root() / "ultralytics",
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
    from plastic_hotspots.training.evaluate import evaluate as run

    result = run(model, data, split=split, imgsz=imgsz, conf=conf, out=out)
    if json_out == "-":
        typer.echo(result.to_json())
        return
    if json_out:
        Path(json_out).write_text(result.to_json(), encoding="utf-8")
    scores = f"mAP50 {result.map50:.3f}, mAP50-95 {result.map50_95:.3f}"
    typer.echo(f"{result.images} images, {result.truths} boxes: {scores}")


models_app = typer.Typer(
    help="The model registry: register trained models, promote the default.", no_args_is_help=True
)


@models_app.command("register")
def register_model(
    model: Annotated[Path, typer.Option("--model", "-m", help="Trained weights (.pt).")],
    data: Annotated[Path, typer.Option(help="Labelled YOLO folder to evaluate on.")],
    split: Annotated[str | None, typer.Option(help="Sub-folder of images/ and labels/, e.g. test.")] = None,
    dataset: Annotated[
        Path | None, typer.Option(help="The dataset it was trained on (its manifest).")
    ] = None,
) -> None:
    """Store a model with its exports, metrics, training data hash and a model card."""
    from plastic_hotspots.training.registry import register as do_register

    made = do_register(model, data, split=split, dataset=dataset)
    m = made.metrics
    typer.echo(f"registered {made.folder} (mAP50 {m.map50:.3f}, mAP50-95 {m.map50_95:.3f})")


@models_app.command("promote")
def promote_model(
    model: Annotated[Path, typer.Option("--model", "-m", help="Candidate weights (.pt).")],
    data: Annotated[Path, typer.Option(help="Labelled YOLO folder both models are judged on.")],
    split: Annotated[str | None, typer.Option(help="Sub-folder of images/ and labels/, e.g. test.")] = None,
) -> None:
    """Make a model the default for `detect`, only if it beats the current default on the same data."""
    from plastic_hotspots.training.registry import promote

    result = promote(model, data, split=split)
    current = f"{result.current:.3f}" if result.current is not None else "none"
    verdict = "promoted" if result.promoted else "kept the current default"
    typer.echo(f"{verdict}: candidate mAP50-95 {result.candidate:.3f}, current {current} ({result.default})")


def register(app: typer.Typer) -> None:
    """Add the training stage's subcommands to the command line."""
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.add_typer(models_app, name="models")
