"""The map stack's public entry points: each resolves, and importing the package loads nothing heavy."""

from __future__ import annotations

import subprocess
import sys

import pytest

import plastic_hotspots.maps as maps_api


@pytest.mark.parametrize("name", maps_api.__all__)
def test_each_public_name_resolves_to_its_definition(name: str) -> None:
    value = getattr(maps_api, name)
    assert value.__module__.startswith("plastic_hotspots.maps.")
    assert value.__name__ == name
    assert name in dir(maps_api)


def test_the_public_list_is_the_lazy_table() -> None:
    assert sorted(maps_api.__all__) == sorted(maps_api._API)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'run_everything'"):
        _ = maps_api.run_everything  # type: ignore[attr-defined]


def test_importing_the_package_loads_neither_numba_nor_folium() -> None:
    code = (
        "import sys; import plastic_hotspots.maps as m; m.load_config; "
        "print(','.join(x for x in ('numba', 'folium', 'torch', 'plastic_hotspots.maps.science.terrain') "
        "if x in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
