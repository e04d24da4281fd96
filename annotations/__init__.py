"""Volunteer labelling -> consensus -> training datasets.

The names in ``__all__`` are the stage's entry points, each imported from its module on first use, so
importing this package imports neither label_studio_sdk nor any ML library. (Records are merged with
``plastic_hotspots.annotations.consensus.consensus``: ``consensus`` is also the name of its module.)
"""

from typing import TYPE_CHECKING

from plastic_hotspots.lazy import lazy_names

if TYPE_CHECKING:
    from plastic_hotspots.annotations.consensus import (
        ConsensusParams,
        ConsensusResult,
        Submission,
        VolunteerBox,
        consensus_arrays,
        skills_from_gold,
    )
    from plastic_hotspots.annotations.dataset import DatasetSpec, write_dataset
    from plastic_hotspots.annotations.errors import AnnotationError
    from plastic_hotspots.annotations.export import read_export
    from plastic_hotspots.annotations.labelstudio import LabelStudioClient
    from plastic_hotspots.annotations.results import run_consensus

__all__ = [
    "AnnotationError",
    "ConsensusParams",
    "ConsensusResult",
    "DatasetSpec",
    "LabelStudioClient",
    "Submission",
    "VolunteerBox",
    "consensus_arrays",
    "read_export",
    "run_consensus",
    "skills_from_gold",
    "write_dataset",
]

# Hidden from type checkers, which read the imports above (so a misspelt name is still an error).
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_names(
        __name__,
        {
            "consensus": (
                "ConsensusParams",
                "ConsensusResult",
                "Submission",
                "VolunteerBox",
                "consensus_arrays",
                "skills_from_gold",
            ),
            "dataset": ("DatasetSpec", "write_dataset"),
            "errors": ("AnnotationError",),
            "export": ("read_export",),
            "labelstudio": ("LabelStudioClient",),
            "results": ("run_consensus",),
        },
    )
