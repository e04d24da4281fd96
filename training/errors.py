"""Errors of the training stage."""

from __future__ import annotations

from plastic_hotspots.errors import PlasticHotspotsError


class TrainingError(PlasticHotspotsError):
    """Training or evaluation cannot go on (missing data, bad folder, no model)."""
