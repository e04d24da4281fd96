"""Reading Label Studio exports: volunteer boxes, submissions, and every region that could not be used.

One bad region never loses the others: :func:`read_export` reports each problem (task, annotator,
region, kind, detail) and goes on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from plastic_hotspots.annotations.consensus import Submission, VolunteerBox
from plastic_hotspots.annotations.convert import ls_to_pixels
from plastic_hotspots.annotations.errors import ExportError
from plastic_hotspots.records import BBox

ProblemKind = Literal[
    "missing_size",  # neither the region nor the task says how large the image is
    "zero_size",  # a box with no width or height
    "out_of_image",  # a box entirely outside the image
    "clipped",  # a box partly outside the image (kept, clipped to it)
    "unknown_label",  # a label not in the taxonomy
    "no_label",  # a rectangle without a label
    "cancelled",  # a skipped (cancelled) annotation: its author did not submit the task
    "malformed",  # anything else that cannot be read
]


@dataclass(frozen=True, slots=True)
class RegionProblem:
    """A region (or annotation) of an export that was not used as it came, and why."""

    task: str
    annotator: str
    region: str
    kind: ProblemKind
    detail: str


@dataclass(frozen=True, slots=True)
class ExportContents:
    """What an export holds, ready for consensus."""

    boxes: tuple[VolunteerBox, ...]
    submissions: tuple[Submission, ...]
    problems: tuple[RegionProblem, ...]
    tasks: Mapping[str, Mapping[str, Any]]  # task key -> task data (image, position, size ...)
    #: Expert boxes per gold task (annotations marked as ground truth).
    gold: Mapping[str, tuple[tuple[str, BBox], ...]] = field(default_factory=dict)


def _annotator(annotation: Mapping[str, Any]) -> str:
    who = annotation.get("completed_by")
    if isinstance(who, Mapping):
        who = who.get("email") or who.get("username") or who.get("id")
    return str(who) if who is not None else "unknown"


def task_key(task: Mapping[str, Any]) -> str:
    """A task's stable key: the ``key`` the project gave it at push, else Label Studio's id."""
    data = task.get("data") or {}
    return str(data.get("key") or task.get("id"))


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _region_box(region: Mapping[str, Any], data: Mapping[str, Any], problem: Any) -> tuple[BBox, str] | None:
    value = region.get("value") or {}
    labels = value.get("rectanglelabels") or []
    if not labels:
        problem("no_label", "rectangle without a label")
        return None
    image_w = _number(region.get("original_width")) or _number(data.get("width"))
    image_h = _number(region.get("original_height")) or _number(data.get("height"))
    if not image_w or not image_h:
        problem(
            "missing_size", "no original_width/original_height on the region nor width/height on the task"
        )
        return None
    x, y, w, h = (_number(value.get(k)) for k in ("x", "y", "width", "height"))
    if x is None or y is None or w is None or h is None:
        problem("malformed", f"rectangle values are not numbers: {dict(value)!r}")
        return None
    if w <= 0 or h <= 0:
        problem("zero_size", f"box {w:.3g}% x {h:.3g}% has no area")
        return None
    x1, y1, x2, y2 = max(x, 0.0), max(y, 0.0), min(x + w, 100.0), min(y + h, 100.0)
    if x2 <= x1 or y2 <= y1:
        problem("out_of_image", f"box at x={x:.3g}%, y={y:.3g}% lies outside the image")
        return None
    if (x1, y1, x2, y2) != (x, y, x + w, y + h):
        problem("clipped", f"box at x={x:.3g}%, y={y:.3g}% ({w:.3g}% x {h:.3g}%) clipped to the image")
    return ls_to_pixels(x1, y1, x2 - x1, y2 - y1, image_w, image_h), str(labels[0])


EXPORT_HINT = (
    "give the JSON file that `plastic-hotspots annotate pull --out FILE` wrote (Label Studio's JSON export)"
)


JSON_TYPES = {dict: "object", str: "string", int: "number", float: "number", bool: "true/false"}


def load_export(path: Path) -> list[Any]:
    """The tasks of a Label Studio JSON export file (a list of tasks).

    Raises:
        ExportError: The file is missing, a folder, not JSON, or JSON that is not a list of tasks.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not an export file" if path.is_dir() else "was not found"
        raise ExportError(f"the export {path} {what}", hint=EXPORT_HINT)
    try:
        text = path.read_text(encoding="utf-8")
        if not text.strip():
            raise ExportError(f"the export {path} is empty", hint=EXPORT_HINT)
        tasks = json.loads(text)
    except UnicodeDecodeError:
        raise ExportError(f"the export {path} is not text (JSON)", hint=EXPORT_HINT) from None
    except json.JSONDecodeError as exc:
        raise ExportError(f"the export {path} is not valid JSON: {exc}", hint=EXPORT_HINT) from None
    if not isinstance(tasks, list):
        raise ExportError(
            f"the export {path} holds a JSON {JSON_TYPES.get(type(tasks), 'value')}, not a list of tasks",
            hint=EXPORT_HINT,
        )
    return tasks


def read_export(tasks: Iterable[Mapping[str, Any]], classes: Iterable[str]) -> ExportContents:
    """Volunteer boxes, submissions and per-region problems from Label Studio export tasks (JSON).

    Cancelled (skipped) annotations are reported and not counted as submissions; a volunteer who
    submitted a task with no boxes is a submission with no boxes. Annotations marked as ground truth
    (an expert's, on gold tasks) become ``gold`` boxes, which measure the volunteers' skill.
    """
    known = set(classes)
    boxes: list[VolunteerBox] = []
    submissions: list[Submission] = []
    problems: list[RegionProblem] = []
    task_data: dict[str, Mapping[str, Any]] = {}
    gold: dict[str, list[tuple[str, BBox]]] = {}
    for n, task in enumerate(tasks):
        if not isinstance(task, Mapping) or not isinstance(task.get("data") or {}, Mapping):
            problems.append(RegionProblem(f"#{n}", "", "", "malformed", "an export entry that is not a task"))
            continue
        key = task_key(task)
        data = task.get("data") or {}
        task_data[key] = data
        for annotation in task.get("annotations") or []:
            if not isinstance(annotation, Mapping):
                problems.append(
                    RegionProblem(key, "", "", "malformed", "an annotation that is not an object")
                )
                continue
            who = _annotator(annotation)
            if annotation.get("was_cancelled"):
                problems.append(RegionProblem(key, who, "", "cancelled", "annotation skipped by its author"))
                continue
            expert = bool(annotation.get("ground_truth"))
            if expert:
                gold.setdefault(key, [])
            else:
                submissions.append(Submission(key, who))
            for region in annotation.get("result") or []:
                if region.get("type") not in (None, "rectanglelabels"):
                    continue
                rid = str(region.get("id", ""))

                def problem(
                    kind: ProblemKind, detail: str, _rid: str = rid, _who: str = who, _key: str = key
                ) -> None:
                    problems.append(RegionProblem(_key, _who, _rid, kind, detail))

                try:
                    found = _region_box(region, data, problem)
                except (TypeError, AttributeError, ValueError) as exc:
                    problem("malformed", str(exc))
                    continue
                if found is None:
                    continue
                box, label = found
                if label not in known:
                    problem("unknown_label", f"label {label!r} is not one of the project's classes")
                    continue
                if expert:
                    gold[key].append((label, box))
                else:
                    boxes.append(VolunteerBox(key, who, label, box))
    frozen_gold = {k: tuple(v) for k, v in gold.items()}
    return ExportContents(tuple(boxes), tuple(submissions), tuple(problems), task_data, frozen_gold)
