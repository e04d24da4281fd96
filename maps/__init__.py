"""Detections and layers -> hotspot grids -> interactive maps.

The public entry points are imported lazily, on first use, so that ``import plastic_hotspots.maps``
loads neither numba nor folium nor any ML library::

    from plastic_hotspots.maps import load_config, run_hotspots, render_map

    result, outputs = run_hotspots(load_config("basin.yaml"), Path("results"))
    render_map(outputs.directory, Path("results/map.html"))
"""

from typing import TYPE_CHECKING

from plastic_hotspots.lazy import lazy_names

if TYPE_CHECKING:
    from plastic_hotspots.maps.config import BasinConfig, load_config
    from plastic_hotspots.maps.demo import run_demo
    from plastic_hotspots.maps.large.run import LargeOutputs, run_large
    from plastic_hotspots.maps.params import HotspotParams
    from plastic_hotspots.maps.render.report import render_report
    from plastic_hotspots.maps.render.webmap import render_map
    from plastic_hotspots.maps.survey.cells import SurveyDensity, density_cells, survey_density
    from plastic_hotspots.maps.wholegrid.outputs import HotspotOutputs
    from plastic_hotspots.maps.wholegrid.run import run_hotspots

__all__ = [
    "BasinConfig",
    "HotspotOutputs",
    "HotspotParams",
    "LargeOutputs",
    "SurveyDensity",
    "density_cells",
    "load_config",
    "render_map",
    "render_report",
    "run_demo",
    "run_hotspots",
    "run_large",
    "survey_density",
]

# Hidden from type checkers, which read the imports above (so a misspelt name is still an error).
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_names(
        __name__,
        {
            "config": ("BasinConfig", "load_config"),
            "demo": ("run_demo",),
            "large.run": ("LargeOutputs", "run_large"),
            "params": ("HotspotParams",),
            "render.report": ("render_report",),
            "render.webmap": ("render_map",),
            "survey.cells": ("SurveyDensity", "density_cells", "survey_density"),
            "wholegrid.outputs": ("HotspotOutputs",),
            "wholegrid.run": ("run_hotspots",),
        },
    )
