"""Subcommands of the training stage: ``plastic-hotspots train`` and ``evaluate``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from plastic_hotspots.detector.cli import (
    DEFAULTS,
    BackendOption,
    DeviceOption,
    ImgszOption,
    ModelOption,
    SliceOverlapOption,
    SliceSizeOption,
)

if TYPE_CHECKING:
    from plastic_hotspots.training.evaluate import Evaluation


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
    from plastic_hotspots.training.datasets import check_dataset

    given = {
        name: ctx.params[name]
        for name in ("start", "out", "epochs", "imgsz", "batch", "device", "seed", "patience")
        if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
    }
    settings = (TrainConfig.from_file(config) if config else TrainConfig()).override(given)
    data_yaml = check_dataset(dataset)
    chosen = settings.device
    if chosen == "auto":
        from plastic_hotspots.training.device import auto_device

        chosen = auto_device()
    best = train_yolo(
        data_yaml, settings.start or default_model_path(), Path(settings.out),
        epochs=settings.epochs, imgsz=settings.imgsz, batch=settings.batch, device=chosen,
        seed=settings.seed, patience=settings.patience, resume=resume,
        config_dir=cache_root() / "ultralytics",
    )  # fmt: skip
    typer.echo(f"best weights: {best}")


def evaluate(
    data: Annotated[Path, typer.Option(help="YOLO folder (images/, labels/, data.yaml with names).")],
    model: ModelOption = None,
    split: Annotated[str | None, typer.Option(help="Sub-folder of images/ and labels/, e.g. test.")] = None,
    class_map: Annotated[
        Path | None,
        typer.Option(help="YAML: dataset class -> taxonomy class; null drops the class and its boxes."),
    ] = None,
    agnostic: Annotated[
        bool, typer.Option(help="Score every class (truths and predictions) as one 'litter' class.")
    ] = False,
    backend: BackendOption = DEFAULTS.backend,
    imgsz: ImgszOption = DEFAULTS.imgsz,
    device: DeviceOption = DEFAULTS.device,
    slice_size: SliceSizeOption = DEFAULTS.slice_size,
    slice_overlap: SliceOverlapOption = DEFAULTS.slice_overlap,
    conf: Annotated[float, typer.Option(help="Score threshold for precision, recall and the plots.")] = 0.25,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for metrics.json (with provenance), confusion matrix, examples."),
    ] = None,
    json_out: Annotated[
        str | None, typer.Option("--json", help="Write the metrics as JSON here ('-': print).")
    ] = None,
) -> None:
    """Score a model on a labelled folder as `detect` runs it (AP50, AP50-95 per class and size, confusion).

    The model, backend, input size and slicing are those of `detect`, with the same defaults.
    Classes are matched by name, after --class-map.
    """
    from plastic_hotspots.detector.settings import DetectorSettings
    from plastic_hotspots.training.evaluate import evaluate as run

    settings = DetectorSettings(
        backend=backend, imgsz=imgsz, device=device, slice_size=slice_size, slice_overlap=slice_overlap
    )
    result = run(model, data, split=split, conf=conf, out=out, settings=settings, class_map=class_map,
                 agnostic=agnostic)  # fmt: skip
    if json_out == "-":
        typer.echo(result.to_json())
        return
    if json_out:
        Path(json_out).write_text(result.to_json(), encoding="utf-8")
    show_evaluation(result)


def _num(value: float | int | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def show_evaluation(result: Evaluation, console: Console | None = None) -> None:
    """Print an evaluation as tables: per class, per object size, dropped boxes, confusion matrix."""
    from rich.table import Table

    console = console or Console()
    classes = Table(
        title=f"{result.images} images, {result.truths} boxes" + (" (agnostic)" if result.agnostic else "")
    )
    for col in ("class", "AP50", "AP50-95", "precision", "recall", "boxes"):
        classes.add_column(col, justify="left" if col == "class" else "right")
    for name, row in result.per_class.items():
        classes.add_row(name, *(_num(row[k]) for k in ("map50", "map50_95", "precision", "recall", "truths")))
    classes.add_section()
    boxes = sum(int(r["truths"] or 0) for r in result.per_class.values())
    overall = (result.map50, result.map50_95, result.precision, result.recall, boxes)
    classes.add_row("all", *(_num(v) for v in overall), style="bold")
    console.print(classes)
    sizes = Table(title="AP by object size (COCO: small < 32², medium < 96² px)")
    for col in ("size", "AP50", "AP50-95", "recall", "boxes"):
        sizes.add_column(col, justify="left" if col == "size" else "right")
    for size, row in result.ap_by_size.items():
        sizes.add_row(size, _num(row["map50"]), _num(row["map50_95"]), _num(result.recall_by_size.get(size)),
                      _num(row["truths"]))  # fmt: skip
    console.print(sizes)
    if result.dropped_boxes:
        dropped = Table(title="Classes dropped by the class map")
        dropped.add_column("dataset class")
        dropped.add_column("boxes dropped", justify="right")
        for name, count in result.dropped_boxes.items():
            dropped.add_row(name, str(count))
        console.print(dropped)
    renamed = {k: v for k, v in result.class_map.items() if v is not None and v != k}
    if renamed and not result.agnostic:
        console.print("mapped: " + ", ".join(f"{k} -> {v}" for k, v in renamed.items()), highlight=False)
    labels = sorted({*result.confusion, *(p for row in result.confusion.values() for p in row)},
                    key=lambda s: (s == "background", s))  # fmt: skip
    if labels:
        matrix = Table(title="Confusion matrix at IoU 0.5 (rows: true, columns: predicted)")
        matrix.add_column("true \\ predicted")
        for label in labels:
            matrix.add_column(label, justify="right")
        for t in labels:
            matrix.add_row(t, *(str(result.confusion.get(t, {}).get(p, 0) or "") for p in labels))
        console.print(matrix)
    only = result.unmatched_classes.get("only_in_data")
    if only:
        console.print(f"[yellow]classes the model does not predict:[/] {', '.join(only)}", highlight=False)


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
