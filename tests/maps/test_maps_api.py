"""The map stack's public entry points load nothing heavy (tests/core/test_public_api.py checks the names)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_package_and_reading_its_config_loads_neither_numba_nor_folium() -> None:
    code = (
        "import sys; import plastic_hotspots.maps as m; m.load_config; "
        "print(','.join(x for x in ('numba', 'folium', 'torch', 'plastic_hotspots.maps.science.terrain') "
        "if x in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_using_the_map_renderer_loads_folium_but_not_numba() -> None:
    code = (
        "import sys; import plastic_hotspots.maps as m; m.render_map; "
        "print(','.join(x for x in ('numba', 'folium') if x in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "folium"
