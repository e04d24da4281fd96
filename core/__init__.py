"""plastic-hotspots: find where plastic leaks into rivers.

The stage packages are ``annotations`` (volunteers -> consensus -> dataset), ``training``
(dataset -> model), ``detector`` (images -> geotagged detections) and ``maps`` (detections and
layers -> hotspot grids -> interactive maps). This small core package holds what they share: the
records that cross a stage boundary, the error base class, provenance and the command line.
"""

from importlib import metadata

try:
    __version__ = metadata.version("plastic-hotspots")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
