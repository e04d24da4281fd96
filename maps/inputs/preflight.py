"""Check every layer a basin config names before the model starts.

A missing or unreadable file used to be found by the stage that reads it: a broken boundaries layer only
after the whole model had run. :func:`check_layer_files` finds each layer's file and opens its header
(raster, vector or Parquet metadata, without reading the data), so that a 0-byte file, a text file with
a layer's name, a truncated header or a vector layer without a CRS is refused at once, with the file
named. Data cut short past its header can still only be found when it is read; the readers name the
file then too.
"""

from __future__ import annotations

from pathlib import Path

from plastic_hotspots.maps.config import BasinConfig, PopulationPolygons, layer_paths
from plastic_hotspots.maps.errors import CRSError
from plastic_hotspots.maps.inputs.observations import is_track_file
from plastic_hotspots.maps.inputs.rasters import reading_layer, require_file
from plastic_hotspots.maps.inputs.vectors import VECTOR_CRS_HINT

PARQUET = (".parquet", ".geoparquet")


def check_layer_files(config: BasinConfig) -> None:
    """Refuse the first layer file that is missing or whose header cannot be read.

    Raises:
        LayerError: The file is missing or unreadable (the layer and the file named), or a vector
            layer other than the observations has no CRS (:class:`~plastic_hotspots.maps.errors.CRSError`).
    """
    for what, layer, raster in (
        ("dem", config.dem, True),
        ("population", config.population, not isinstance(config.population, PopulationPolygons)),
        ("zones", config.zones, False),
        ("rivers", config.rivers, False),
        ("barriers", config.barriers, False),
        ("observations", config.observations, False),
        ("boundaries", config.boundaries, False),
    ):
        for path in layer_paths(layer):
            require_file(path, what)
            _open_header(path, what, raster=raster)


def _open_header(path: Path, what: str, *, raster: bool) -> None:
    with reading_layer(path, what):
        if raster:
            import rasterio

            with rasterio.open(path):
                return
        if path.suffix.lower() in PARQUET:
            import pyarrow.parquet as pq

            pq.read_schema(path)
            return
        if what == "observations" and is_track_file(path):
            return  # pLitter tracks: their own reader checks them
        import pyogrio

        info = pyogrio.read_info(path)
    if info.get("crs") is None and what != "observations":  # the observations' reader says it its own way
        raise CRSError(f"the {what} layer {path} has no CRS", hint=VECTOR_CRS_HINT)
