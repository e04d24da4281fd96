"""Detections and layers -> hotspot grids -> interactive maps.

The public entry points are imported lazily, on first use, so that ``import plastic_hotspots.maps``
loads neither numba nor folium nor any ML library::

    from plastic_hotspots.maps import load_config, run_hotspots, render_map

    result, outputs = run_hotspots(load_config("basin.yaml"), Path("results"))
    render_map(outputs.directory, Path("results/map.html"))
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plastic_hotspots.maps.config import BasinConfig, load_config
    from plastic_hotspots.maps.demo import run_demo
    from plastic_hotspots.maps.large.run import LargeOutputs, run_large
    from plastic_hotspots.maps.params import HotspotParams
    from plastic_hotspots.maps.render.report import render_report
    from plastic_hotspots.maps.render.webmap import render_map
    from plastic_hotspots.maps.survey.cells import SurveyDensity, density_cells, survey_density
    from plastic_hotspots.maps.wholegrid.run import HotspotOutputs, run_hotspots

# Public name -> the module that defines it.
_API = {
    "BasinConfig": "config",
    "load_config": "config",
    "HotspotParams": "params",
    "run_hotspots": "wholegrid.run",
    "HotspotOutputs": "wholegrid.run",
    "run_large": "large.run",
    "LargeOutputs": "large.run",
    "survey_density": "survey.cells",
    "density_cells": "survey.cells",
    "SurveyDensity": "survey.cells",
    "render_map": "render.webmap",
    "render_report": "render.report",
    "run_demo": "demo",
}

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


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
