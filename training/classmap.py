"""A dataset's class names mapped onto the project's taxonomy, for evaluating on other people's data.

A class map is a YAML mapping ``dataset class name -> taxonomy class name``; ``null`` drops the class and
its boxes (they are neither found nor missed). Classes it does not name pass through when their name is
already a class the model knows (the taxonomy, or the model's own class names); any other class is an
error that names it. With ``agnostic`` every class (truth and prediction) becomes one ``litter`` class.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from plastic_hotspots.annotations.taxonomy import CLASS_NAMES
from plastic_hotspots.training.errors import TrainingError

AGNOSTIC = "litter"


@dataclass(frozen=True, slots=True)
class ClassMap:
    """Dataset class name -> taxonomy class name, or ``None`` to drop the class and its boxes."""

    mapping: Mapping[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, value in self.mapping.items():
            if not isinstance(key, str) or not (value is None or isinstance(value, str)):
                raise TrainingError(
                    f"class map entry {key!r}: {value!r} is not 'dataset class: taxonomy class'",
                    hint="write one `dataset class: taxonomy class` (or `: null` to drop it) per line",
                )

    @classmethod
    def from_file(cls, path: Path) -> ClassMap:
        """Read a YAML class map.

        Raises:
            TrainingError: The file is missing, not YAML, or not a mapping of names.
        """
        import yaml

        if not path.is_file():
            raise TrainingError(f"class map {path} does not exist", hint="pass --class-map with a YAML file")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise TrainingError(f"class map {path} is not valid YAML ({exc})", hint="fix the YAML") from exc
        if not isinstance(raw, dict):
            raise TrainingError(
                f"class map {path} is not a mapping (got {type(raw).__name__})",
                hint="write `dataset class: taxonomy class` lines, e.g. `Plastic bag: bag_film`",
            )
        return cls({str(k): (None if v is None else str(v)) for k, v in raw.items()})


def resolve(
    dataset_classes: Sequence[str],
    class_map: ClassMap | None = None,
    *,
    model_classes: Iterable[str] = (),
    agnostic: bool = False,
) -> dict[str, str | None]:
    """Each dataset class's name in the evaluation (``None``: dropped, with its boxes).

    Args:
        dataset_classes: The class names of the dataset (its ``data.yaml``).
        class_map: Renames and drops; classes it leaves out keep their name.
        model_classes: The model's class names, known besides the taxonomy's.
        agnostic: Every class kept becomes ``litter`` (no name needs to be known).

    Raises:
        TrainingError: The map names a class the dataset does not have or a target the model cannot
            predict, or a dataset class is neither mapped nor known.
    """
    mapping = dict(class_map.mapping) if class_map else {}
    known = set(CLASS_NAMES) | set(model_classes)
    extra = sorted(set(mapping) - set(dataset_classes))
    if extra:
        raise TrainingError(
            f"the class map names classes the dataset does not have: {', '.join(extra)}",
            hint=f"the dataset's classes are: {', '.join(dataset_classes)}",
        )
    bad_targets = sorted({v for v in mapping.values() if v is not None and v not in known})
    if bad_targets and not agnostic:
        raise TrainingError(
            f"the class map maps onto unknown classes: {', '.join(bad_targets)}",
            hint=f"map onto the taxonomy ({', '.join(CLASS_NAMES)}) or null to drop",
        )
    unknown = [c for c in dataset_classes if c not in mapping and c not in known]
    if unknown and not agnostic:
        raise TrainingError(
            f"dataset classes not in the taxonomy: {', '.join(unknown)}",
            hint="pass --class-map classes.yaml mapping each onto a taxonomy class "
            f"({', '.join(CLASS_NAMES)}) or null to drop it, or use --agnostic",
        )
    resolved = {c: mapping.get(c, c) for c in dataset_classes}
    if agnostic:
        return {c: None if v is None else AGNOSTIC for c, v in resolved.items()}
    return resolved
