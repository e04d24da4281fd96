"""Errors of the annotations stage."""

from __future__ import annotations

from plastic_hotspots.errors import PlasticHotspotsError


class AnnotationError(PlasticHotspotsError):
    """Base of the annotations stage's errors."""


class ServerError(AnnotationError):
    """The Label Studio server cannot be reached, refuses the key, or answers an error."""


class ExportError(AnnotationError):
    """An export cannot be made, downloaded or read as a whole."""
