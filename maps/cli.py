"""Subcommands of the map stage: ``demo``, ``hotspots``, ``map``, ``report`` and ``density``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from plastic_hotspots.errors import ConfigError

if TYPE_CHECKING:
    import geopandas as gpd

    from plastic_hotspots.maps.config import BasinConfig

console = Console(stderr=True)


def demo(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory to write the demo basin and its results into.")
    ] = Path("demo"),
    seed: Annotated[int, typer.Option(help="Random seed of the generated basin.")] = 20240601,
    basin: Annotated[
        str,
        typer.Option(
            help="Which basin: 'generated' (a synthetic basin with planted truth) or 'maha-oya' (a real "
            "basin in Sri Lanka, shipped with the package: terrain, rivers, census, a litter survey)."
        ),
    ] = "generated",
) -> None:
    """Generate a demo river basin (or copy a real one), run the hotspot model on it and write its map."""
    from plastic_hotspots.maps.demo import BASINS, run_demo

    if basin not in BASINS:
        raise ConfigError(f"--basin {basin!r} is not a demo basin", hint=f"choose one of {', '.join(BASINS)}")
    from plastic_hotspots.geoio import check_output_dir

    check_output_dir(out)
    result = run_demo(out, seed, basin=basin)
    console.print("[bold green]Demo basin done.[/]")
    typer.echo(f"map:      {result.map_html}")
    typer.echo(f"report:   {result.report_html}")
    typer.echo(f"hotspots: {result.hotspots_dir}")
    typer.echo(f"config:   {result.config}")
    if result.truth is not None:
        typer.echo(f"truth:    {result.truth}")
    else:
        typer.echo(f"sources:  {result.config.parent / 'ATTRIBUTION.md'} (licences and attributions)")


def hotspots(
    config: Annotated[Path, typer.Option("--config", "-c", help="Basin config YAML naming the layers.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory for the hotspot rasters and GeoPackage.")
    ],
    tile: Annotated[
        int | None,
        typer.Option(
            help="Large mode: run tile by tile, N x N cells per tile (e.g. 1024), holding a few tiles in "
            "memory, for basins whose grid does not fit in memory (more than about 10^7 cells on a "
            "machine with a few GiB). Same rasters, hotspots and file names; no survey fusion or "
            "sub-basins."
        ),
    ] = None,
    work_dir: Annotated[
        Path | None,
        typer.Option(help="Large mode: folder of the intermediate tiles (default OUT/.work; kept)."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Large mode: Dask worker processes on this machine that solve the tiles (1: none)."
        ),
    ] = 1,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Large mode: address of an existing Dask scheduler (tcp://host:8786) whose workers solve "
            "the tiles; they must see --out (or --work-dir) at the same path."
        ),
    ] = None,
    scheduler_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the scheduler to answer and a worker to join.")
    ] = 10.0,
    uncertainty: Annotated[
        int | None,
        typer.Option(
            "--uncertainty",
            help="Parameter sets drawn over plausible ranges for the totals' 5-95 % ranges, hotspot rank "
            "stability and a sensitivity table, in uncertainty.json (default: the config's "
            "uncertainty: draws, else 16; 0: none).",
        ),
    ] = None,
) -> None:
    """Run the hotspot model (leakage sources, river routing, accumulation) for one basin.

    With --tile N it runs the large mode: the grid is cut into tiles of N x N cells kept on disk, for
    basins too large for memory. See docs/scale-out.md.
    """
    from dataclasses import replace

    from plastic_hotspots.geoio import check_output_dir
    from plastic_hotspots.maps.config import load_config
    from plastic_hotspots.maps.inputs.preflight import check_layer_files

    basin = load_config(config)
    check_output_dir(out)
    if work_dir is not None:
        check_output_dir(work_dir, "--work-dir")
    check_layer_files(basin)
    _check_size(basin, out, tile, work_dir)
    if uncertainty is not None:
        basin = replace(basin, uncertainty=replace(basin.uncertainty, draws=uncertainty))
    if tile is None:
        if workers > 1 or scheduler is not None or work_dir is not None:
            raise ConfigError(
                "--workers, --scheduler and --work-dir are options of the large mode",
                hint="add --tile N (e.g. --tile 1024) to run tile by tile, or leave them out",
            )
        _whole_grid(basin, out)
        return
    _large(basin, out, tile, work_dir, workers, scheduler, scheduler_timeout)


def _check_size(basin: BasinConfig, out: Path, tile: int | None, work_dir: Path | None) -> None:
    """Refuse a grid that cannot fit in memory (whole grid) or on disk (tiled), before any work."""
    import shutil

    from plastic_hotspots.maps.science.basin import basin_grid, check_grid_fits
    from plastic_hotspots.memory import available_memory

    where = work_dir or out / ".work"
    existing = next((p for p in (where, *where.absolute().parents) if p.exists()), None)
    free = shutil.disk_usage(existing).free if existing is not None else None
    grid = basin_grid(basin)
    check_grid_fits(grid, tile=tile, work_dir=where, available=available_memory(), free_disk=free)


def _whole_grid(basin: BasinConfig, out: Path) -> None:
    from plastic_hotspots.geoio import whole_folder
    from plastic_hotspots.maps.io.results import result_names
    from plastic_hotspots.maps.wholegrid.run import run_hotspots

    # Whole or absent: the run writes into a fresh folder that replaces ``out`` only when it is done.
    with whole_folder(out, result_names()) as partial:
        result, outputs = run_hotspots(basin, partial)
    outputs = outputs.moved_to(partial, out)
    n_leak = sum(1 for h in result.hotspots if h.kind == "leakage")
    n_acc = len(result.hotspots) - n_leak
    console.print(f"[bold green]{n_leak} leakage and {n_acc} accumulation hotspots ranked.[/]")
    typer.echo(f"vectors:  {outputs.vectors}")
    if outputs.uncertainty is not None:
        typer.echo(f"ranges:   {outputs.uncertainty} ({basin.uncertainty.draws} parameter sets drawn)")
    if outputs.fusion is not None:
        import json

        report, figure = outputs.fusion
        typer.echo(f"fusion:   {json.loads(report.read_text(encoding='utf-8'))['summary']}")
        typer.echo(f"fusion:   {report}, {figure} (modelled and observed side by side)")
    for name, path in outputs.rasters.items():
        typer.echo(f"raster:   {path}  ({name})")


def _large(
    basin: BasinConfig,
    out: Path,
    tile: int,
    work_dir: Path | None,
    workers: int,
    scheduler: str | None,
    timeout_s: float,
) -> None:
    from plastic_hotspots.cluster import check_workers_or_scheduler, optional_cluster
    from plastic_hotspots.geoio import whole_folder
    from plastic_hotspots.maps.io.results import result_names
    from plastic_hotspots.maps.large.run import run_large

    if tile < 16:
        raise ConfigError(
            f"--tile must be at least 16 cells, got {tile}",
            hint="use 512 to 1024 for large basins (a multiple of 256 keeps the GeoTIFF writes aligned)",
        )
    check_workers_or_scheduler(workers, scheduler)
    if basin.uncertainty.draws > 0:
        console.print(
            "[yellow]The large mode draws no parameter sets: its uncertainty.json says so (draws: 0); "
            "run the whole-grid mode on a coarser grid (cell_size_m) for ranges.[/]"
        )
    if basin.observations is not None:
        console.print(
            "[yellow]The large mode does not read the survey (observations): no observed density, "
            "calibration or observed extra source.[/]"
        )
    # Whole or absent, as the whole-grid run: the outputs go into a fresh folder swapped in at the end. The
    # tiles' work folder stays where it was (default ``out/.work``, carried into the new folder), so a run
    # stopped midway resumes from its tiles.
    work = work_dir if work_dir is not None else out / ".work"
    with optional_cluster(workers, scheduler, timeout_s=timeout_s) as cluster:
        mapper = cluster.map_unordered if cluster is not None else None
        with whole_folder(out, result_names()) as partial:
            written = run_large(basin, partial, tile=tile, work_dir=work, mapper=mapper)
    result = written.moved_to(partial, out)
    n_leak = sum(1 for h in result.hotspots if h.kind == "leakage")
    n_acc = len(result.hotspots) - n_leak
    counts = result.counts
    console.print(
        f"[bold green]{n_leak} leakage and {n_acc} accumulation hotspots ranked "
        f"(large mode: {counts.tiles} tiles of {tile}).[/]"
    )
    typer.echo(f"vectors:  {result.vectors}")
    for name, path in result.rasters.items():
        typer.echo(f"raster:   {path}  ({name})")
    typer.echo(f"work:     {work_dir or out / '.work'} (intermediate tiles; delete when done)")


def map_command(
    directory: Annotated[Path, typer.Argument(help="A directory written by `plastic-hotspots hotspots`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path("map.html"),
    title: Annotated[str, typer.Option(help="Title shown on the map.")] = "Plastic hotspots",
    before: Annotated[
        Path | None,
        typer.Option(help="An earlier result directory of the same basin: adds a layer of the change."),
    ] = None,
) -> None:
    """Render a self-contained interactive map (works offline) of a hotspot result directory."""
    from plastic_hotspots.geoio import check_output_file
    from plastic_hotspots.maps.render.webmap import render_map

    check_output_file(out, example="map.html")

    typer.echo(str(render_map(directory, out, title=title, before=before)))


def report(
    directory: Annotated[Path, typer.Argument(help="A directory written by `plastic-hotspots hotspots`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path("report.html"),
    title: Annotated[str, typer.Option(help="Title of the report.")] = "Plastic hotspots report",
) -> None:
    """Write a one-page agency summary of a hotspot result directory (offline HTML; prints to PDF)."""
    from plastic_hotspots.geoio import check_output_file
    from plastic_hotspots.maps.render.report import render_report

    check_output_file(out, example="report.html")

    typer.echo(str(render_report(directory, out, title=title)))


def density(
    observations: Annotated[Path, typer.Argument(help="detect's .images.parquet, or pLitter track GeoJSON.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="GeoPackage of surveyed cells to write.")] = Path(
        "cells.gpkg"
    ),
    cell_size: Annotated[float, typer.Option(help="Cell edge in metres.")] = 250.0,
    min_observations: Annotated[int, typer.Option(help="Fewer observations: flagged low_effort.")] = 3,
    validate: Annotated[
        bool,
        typer.Option(
            "--validate",
            help="Instead of writing cells: fit half of the tracks, predict the other half, and print the "
            "held-out table (density / one area-wide rate / raw counts) for several splits.",
        ),
    ] = False,
    splits: Annotated[int, typer.Option(help="With --validate: how many random halvings of the tracks.")] = 3,
) -> None:
    """Effort-normalised litter density per cell, with intervals and Getis-Ord Gi* hot spots.

    The rate of a cell is smoothed over its neighbours and shrunk towards the area's rate, by as much as
    cross-validation over whole tracks says predicts left-out tracks best; the chosen settings, their
    cross-validated deviance against one area-wide rate and the intervals' coverage are printed and
    written into the cells file.
    """
    import json

    import numpy as np

    from plastic_hotspots.geoio import atomic_path, check_output_file
    from plastic_hotspots.maps.inputs.observations import read_observations
    from plastic_hotspots.maps.params import GI_FDR
    from plastic_hotspots.maps.survey.cells import (
        check_density_fits,
        density_cells,
        survey_density,
        survey_grid,
        track_lines,
    )
    from plastic_hotspots.memory import available_memory
    from plastic_hotspots.provenance import make_provenance

    if not validate:
        check_output_file(out, example="cells.gpkg")

    if not (math.isfinite(cell_size) and cell_size >= 1.0):
        raise ConfigError(
            f"--cell-size must be a number of metres of at least 1, got {cell_size}",
            hint="street surveys are usually binned at 100 to 500 m",
        )
    if min_observations < 1:
        raise ConfigError(
            f"--min-observations must be at least 1, got {min_observations}",
            hint="a cell seen fewer times is flagged low_effort (uncertain, never clean); 3 is the default",
        )
    frame = read_observations(observations)
    check_density_fits(survey_grid(frame, cell_size)[0], available_memory())
    if validate:
        _validate_density(frame, cell_size, splits)
        return
    result = survey_density(frame, cell_size, min_observations=min_observations)
    cells = density_cells(result, min_observations)
    choice = result.choice
    parameters = {
        "cell_size": cell_size,
        "min_observations": min_observations,
        **{f"smoothing.{k}": v for k, v in choice.to_dict().items()},
    }
    prov = make_provenance(
        "plastic_hotspots.maps.survey.density", parameters=parameters, inputs=[str(observations)]
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tracks = track_lines(frame, result)
    with atomic_path(out) as tmp:
        meta = {"provenance": prov.to_json(), "smoothing": json.dumps(choice.to_dict())}
        cells.to_file(tmp, layer="cells", driver="GPKG", engine="pyogrio", metadata=meta)
        tracks.to_file(tmp, layer="tracks", driver="GPKG", engine="pyogrio", metadata=meta)
    surveyed = ~cells["low_effort"]
    hot = int(((cells["gi_q"] <= GI_FDR) & (cells["gi_z"] > 0) & surveyed).sum())
    cold = int(((cells["gi_q"] <= GI_FDR) & (cells["gi_z"] < 0) & surveyed).sum())
    uncorrected = int(((cells["gi_p"] <= GI_FDR) & (cells["gi_z"] > 0) & surveyed).sum())
    typer.echo(
        f"{len(frame)} observations in {len(cells)} cells ({int(cells['low_effort'].sum())} low effort); "
        f"area rate {result.density.area_rate:.3f} items per observation"
    )
    typer.echo(f"rate: {choice.describe(cell_size)}")
    typer.echo(
        f"Gi*: {hot} hot-spot and {cold} cold-spot cells at a false-discovery rate of {GI_FDR:.0%} "
        f"(Benjamini-Hochberg over {int(np.isfinite(cells['gi_p']).sum())} cells tested); "
        f"{uncorrected} hot-spot cells with the uncorrected p below {GI_FDR:g}"
    )
    effects = tracks["effect"]
    if len(tracks) > 1:
        typer.echo(
            f"{len(tracks)} tracks; detection level per track (1 = the mean track) from "
            f"{effects.min():.2f} to {effects.max():.2f}"
        )
    typer.echo(f"cells: {out} (layers: cells, tracks)")


def _validate_density(frame: gpd.GeoDataFrame, cell_size: float, splits: int) -> None:
    """Print the held-out table of ``density --validate``."""
    import numpy as np

    from plastic_hotspots.maps.inputs.observations import observations_on_grid
    from plastic_hotspots.maps.survey.cells import survey_grid
    from plastic_hotspots.maps.survey.validation import score_split, split_tracks

    if splits < 1:
        raise ConfigError(f"--splits must be at least 1, got {splits}", hint="3 to 10 halvings are typical")
    grid, rows, cols, keep = survey_grid(frame, cell_size)
    obs = observations_on_grid(frame, grid).subset(keep)
    items, track = np.asarray(obs.items, dtype=np.float64), obs.track.astype(str)
    tracks = list(dict.fromkeys(track.tolist()))
    if len(tracks) < 4:
        raise ConfigError(
            f"--validate fits some tracks and scores others: it needs 4 or more, the survey has "
            f"{len(tracks)}",
            hint="validate a survey of several videos, walks or days (a `track` column names them)",
        )
    typer.echo(
        f"{len(tracks)} tracks, {int(keep.sum())} observations, {cell_size:g} m cells: half the tracks "
        "fitted, the other half's items per cell predicted (Poisson deviance over the cells both halves saw)"
    )
    typer.echo(f"{'split':>5} {'cells':>6} {'density':>9} {'area rate':>10} {'raw counts':>11} {'ratio':>6} "
               f"{'coverage':>9}  chosen")  # fmt: skip
    totals = np.zeros(3)
    covered = judged = 0.0
    for seed in range(splits):
        fitted, scored = split_tracks(tracks, seed)
        score = score_split(rows, cols, items, track, fitted, scored, grid.width, seed=seed)
        totals += (score.model, score.area, score.raw)
        if score.coverage_cells:
            covered += score.coverage * score.coverage_cells
            judged += score.coverage_cells
        typer.echo(
            f"{seed:>5} {score.cells:>6} {score.model:>9.0f} {score.area:>10.0f} {score.raw:>11.0f} "
            f"{score.ratio:>6.2f} {_percent(score.coverage):>9}  {score.choice.describe(cell_size)}"
        )
    coverage = covered / judged if judged else math.nan
    typer.echo(
        f"{'all':>5} {'':>6} {totals[0]:>9.0f} {totals[1]:>10.0f} {totals[2]:>11.0f} "
        f"{totals[0] / totals[1]:>6.2f} {_percent(coverage):>9}"
    )


def _percent(share: float) -> str:
    return "n/a" if not math.isfinite(share) else f"{100 * share:.0f} %"


def register(app: typer.Typer) -> None:
    """Add the map stage's subcommands to the command line."""
    app.command("demo")(demo)
    app.command("hotspots")(hotspots)
    app.command("map")(map_command)
    app.command("report")(report)
    app.command("density")(density)
