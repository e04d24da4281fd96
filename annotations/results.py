"""Consensus from an export, written as tables and a volunteer leaderboard people can look at.

``run_consensus`` reads a pulled export, measures volunteer skill on gold tasks, runs consensus, and
writes into one folder:

* ``consensus.parquet``: every consensus box (task, label, pixel box, support, spread, agreement,
  annotators, accepted, needs_review) with the parameters in its metadata;
* ``problems.csv``: every region of the export that was not used as it came, and why;
* ``volunteers.csv`` and ``leaderboard.png``: per-volunteer work, agreement and skill.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from plastic_hotspots.annotations.consensus import (
    ConsensusParams,
    ConsensusResult,
    VolunteerStats,
    consensus,
    effective_skills,
    skills_from_gold,
    volunteer_stats,
)
from plastic_hotspots.annotations.dataset import (
    DatasetSpec,
    DatasetSummary,
    LabelledBox,
    PhotoMeta,
    write_dataset,
)
from plastic_hotspots.annotations.errors import ExportError
from plastic_hotspots.annotations.export import ExportContents, load_export, read_export
from plastic_hotspots.annotations.taxonomy import CLASS_NAMES
from plastic_hotspots.geoio import atomic_path
from plastic_hotspots.litterlist import COLUMN, litter_list_codes
from plastic_hotspots.records import BBox


@dataclass(frozen=True, slots=True)
class ConsensusOutputs:
    """What ``run_consensus`` made and where it wrote it."""

    contents: ExportContents
    result: ConsensusResult
    volunteers: list[VolunteerStats]
    folder: Path


def run_consensus(export: Path, out: Path, params: ConsensusParams | None = None) -> ConsensusOutputs:
    """Consensus of a pulled export (JSON) into ``out``."""
    import pandas as pd

    params = params or ConsensusParams()
    tasks = load_export(Path(export))
    contents = read_export(tasks, CLASS_NAMES)
    gold_skill = skills_from_gold(contents.boxes, contents.gold, submissions=contents.submissions)
    weights = effective_skills(gold_skill, params)
    gold_tasks = set(contents.gold)
    boxes = [b for b in contents.boxes if b.task not in gold_tasks]
    submissions = [s for s in contents.submissions if s.task not in gold_tasks]
    result = consensus(boxes, submissions, params, weights)
    stats = volunteer_stats(contents.boxes, contents.submissions, result, gold_skill)
    out.mkdir(parents=True, exist_ok=True)
    columns = {
        "task": "object", "label": "object", COLUMN: "object", "x1": "float64", "y1": "float64",
        "x2": "float64", "y2": "float64", "support": "float64", "sigma": "float64",
        "label_agreement": "float64", "n_annotators": "int64", "n_submitters": "int64", "members": "object",
        "accepted": "bool", "needs_review": "bool",
    }  # fmt: skip
    rows = [
        {
            "task": b.task,
            "label": b.label,
            COLUMN: litter_list_codes(b.label),
            "x1": b.box.x1,
            "y1": b.box.y1,
            "x2": b.box.x2,
            "y2": b.box.y2,
            "support": b.support,
            "sigma": b.sigma,
            "label_agreement": b.label_agreement,
            "n_annotators": b.n_annotators,
            "n_submitters": b.n_submitters,
            "members": ",".join(b.members),
            "accepted": b.accepted,
            "needs_review": b.needs_review,
        }
        for b in result.boxes
    ]
    # The columns even with no box at all, so that `dataset` reads an empty consensus as empty.
    frame = (
        pd.DataFrame(rows, columns=list(columns))
        if rows
        else pd.DataFrame(columns=list(columns)).astype(columns)
    )
    with atomic_path(out / "consensus.parquet") as tmp:
        frame.to_parquet(tmp, index=False)
    with atomic_path(out / "parameters.json") as tmp:
        text = json.dumps(
            {"params": asdict(params), "export": str(export), "gold_tasks": sorted(gold_tasks)}, indent=1
        )
        tmp.write_text(text, encoding="utf-8")
    problems = pd.DataFrame(
        [asdict(p) for p in contents.problems], columns=["task", "annotator", "region", "kind", "detail"]
    )
    with atomic_path(out / "problems.csv") as tmp:
        problems.to_csv(tmp, index=False)
    volunteers = pd.DataFrame([asdict(s) for s in stats])
    with atomic_path(out / "volunteers.csv") as tmp:
        volunteers.to_csv(tmp, index=False)
    if stats:
        plot_leaderboard(stats, out / "leaderboard.png")
    return ConsensusOutputs(contents, result, stats, out)


def plot_leaderboard(stats: list[VolunteerStats], path: Path) -> None:
    """Horizontal bars: each volunteer's boxes, split into agreed (in accepted consensus) and not."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ordered = sorted(stats, key=lambda s: (s.accepted_boxes, s.boxes), reverse=False)[-30:]
    names = [s.annotator for s in ordered]
    agreed = [s.accepted_boxes for s in ordered]
    other = [s.boxes - s.accepted_boxes for s in ordered]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(ordered) + 1.2))
    ax.barh(names, agreed, color="#2a9d8f", label="agreed with the consensus")
    ax.barh(names, other, left=agreed, color="#e9c46a", label="not in an accepted box")
    for y, s in enumerate(ordered):
        skill = f"skill {s.skill:.2f}" + ("" if s.gold_tasks else " (default)")
        ax.text(s.boxes, y, f"  {skill}", va="center", fontsize=8)
    ax.set_xlabel("boxes drawn")
    ax.set_title("Volunteers: boxes drawn and agreement")
    ax.legend(loc="lower right", fontsize=8)
    ax.margins(x=0.25)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def is_labelled(task: Mapping[str, Any]) -> bool:
    """Whether a volunteer submitted the task: an annotation not cancelled, with or without boxes."""
    return any(isinstance(a, Mapping) and not a.get("was_cancelled") for a in task.get("annotations") or [])


def dataset_from_consensus(
    consensus_dir: Path,
    tasks: Sequence[Mapping[str, Any]],
    photo_of: Callable[[Mapping[str, Any]], Path],
    out: Path,
    spec: DatasetSpec | None = None,
    *,
    fixed_splits: Mapping[str, str] | None = None,
    source: Mapping[str, Any] | None = None,
) -> DatasetSummary:
    """A YOLO dataset of the accepted consensus boxes of ``tasks`` (an export), split by place and day.

    ``photo_of`` gives a task's photo file (from its data); ``fixed_splits`` pins photos to a split.
    Only labelled tasks (:func:`is_labelled`) become photos of the dataset: a photo nobody labelled is
    not a photo without litter.

    Raises:
        ExportError: ``consensus_dir`` holds no consensus, or no task of ``tasks`` is labelled.
    """
    import pandas as pd

    table = Path(consensus_dir) / "consensus.parquet"
    if not table.is_file():
        raise ExportError(
            f"{consensus_dir} holds no consensus.parquet",
            hint="give the folder that `plastic-hotspots annotate consensus EXPORT --out FOLDER` wrote",
        )
    tasks = [task for task in tasks if isinstance(task, Mapping) and is_labelled(task)]
    if not tasks:
        raise ExportError(
            "the export holds no labelled photo: a dataset would have nothing to learn from",
            hint="pull again once volunteers have submitted annotations",
        )
    frame = pd.read_parquet(table)  # a broken file: the command line names it with the library's words
    frame = frame[frame["accepted"]]
    boxes = [
        LabelledBox(str(task), str(label), BBox(float(x1), float(y1), float(x2), float(y2)))
        for task, label, x1, y1, x2, y2 in frame[["task", "label", "x1", "y1", "x2", "y2"]].itertuples(
            index=False
        )
    ]
    metas = []
    for task in tasks:
        data = task.get("data") or {}
        key = str(data.get("key") or task.get("id"))
        metas.append(
            PhotoMeta(key, photo_of(task), int(data.get("width") or 0), int(data.get("height") or 0),
                      data.get("lon"), data.get("lat"), data.get("captured_at"))
        )  # fmt: skip
    return write_dataset(
        out, metas, boxes, CLASS_NAMES, spec or DatasetSpec(),
        source={**(source or {}), "consensus": str(consensus_dir)}, fixed_splits=fixed_splits,
    )  # fmt: skip
