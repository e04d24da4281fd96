"""Training settings: typed, from a YAML file, with command-line options taking precedence."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from plastic_hotspots.training.errors import TrainingError


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """How a model is trained (every field can come from ``--config train.yaml`` or an option)."""

    start: str | None = None
    out: str = "runs"
    epochs: int = 100
    imgsz: int = 640
    batch: int = 16
    device: str = "auto"
    seed: int = 0
    patience: int = 30

    def __post_init__(self) -> None:
        for name in ("epochs", "imgsz", "batch"):
            if int(getattr(self, name)) < 1:
                raise TrainingError(
                    f"{name} must be at least 1, got {getattr(self, name)}", hint=f"fix `{name}`"
                )
        if self.patience < 0:
            raise TrainingError(
                f"patience must not be negative, got {self.patience}", hint="use 0 to never stop early"
            )

    @classmethod
    def from_file(cls, path: Path) -> TrainConfig:
        """Settings from a YAML file; unknown keys are refused."""
        import yaml

        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise TrainingError(f"{path} is not a mapping of settings", hint="write `key: value` lines")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainingError(
                f"{path}: unknown settings {', '.join(unknown)}",
                hint=f"known settings: {', '.join(sorted(known))}",
            )
        types = {f.name: f.type for f in fields(cls)}
        try:
            clean = {
                k: (str(v) if "str" in str(types[k]) and v is not None else int(v)) for k, v in data.items()
            }
        except (TypeError, ValueError) as exc:
            raise TrainingError(
                f"{path}: a setting has the wrong type ({exc})", hint="numbers for numbers"
            ) from exc
        return cls(**clean)  # type: ignore[arg-type]

    def override(self, values: dict[str, Any]) -> TrainConfig:
        """These settings with ``values`` (given on the command line) taking precedence."""
        return replace(self, **values)
