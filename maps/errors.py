"""Errors raised by the map stack (layers, hotspot model, rendering)."""

from __future__ import annotations

from plastic_hotspots.errors import PlasticHotspotsError


class MapsError(PlasticHotspotsError):
    """Base class of errors raised by :mod:`maps`."""


class LayerError(MapsError):
    """An input layer cannot be used: missing file, no CRS, wrong units, empty area, all nodata."""


class CRSError(LayerError):
    """A layer has no CRS, or one that does not fit how it is used."""


class RenderError(MapsError):
    """A map or report cannot be rendered from a result directory."""


class ModelError(MapsError):
    """The model's results break one of its own invariants (e.g. plastic vanishes between the stages)."""


class LayerWarning(UserWarning):
    """An input layer was used after a repair or with rows left out (the message says how many)."""
