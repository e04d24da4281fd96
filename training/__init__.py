"""Training datasets -> litter detection models, with evaluation.

The names in ``__all__`` are the stage's entry points, each imported from its module on first use, so
importing this package imports no ML library. (A model is evaluated with
``plastic_hotspots.training.evaluate.evaluate``: ``evaluate`` is also the name of its module.)
"""

from typing import TYPE_CHECKING

from plastic_hotspots.lazy import lazy_names

if TYPE_CHECKING:
    from plastic_hotspots.training.config import TrainConfig
    from plastic_hotspots.training.device import auto_device
    from plastic_hotspots.training.errors import TrainingError
    from plastic_hotspots.training.evaluate import Evaluation, evaluate_predictions
    from plastic_hotspots.training.registry import Promotion, Registered, promote, register

__all__ = [
    "Evaluation",
    "Promotion",
    "Registered",
    "TrainConfig",
    "TrainingError",
    "auto_device",
    "evaluate_predictions",
    "promote",
    "register",
]

# Hidden from type checkers, which read the imports above (so a misspelt name is still an error).
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_names(
        __name__,
        {
            "config": ("TrainConfig",),
            "device": ("auto_device",),
            "errors": ("TrainingError",),
            "evaluate": ("Evaluation", "evaluate_predictions"),
            "registry": ("Promotion", "Registered", "promote", "register"),
        },
    )
