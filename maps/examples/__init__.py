"""Example basins of real data, shipped as package data (no code here).

``maha_oya/`` is a compact extract of the Maha Oya basin, Sri Lanka (terrain, rivers, census, waste
collection, administrative units and a pLitter street survey), with its ``basin.yaml`` and
``ATTRIBUTION.md``. ``plastic-hotspots demo --basin maha-oya`` copies it out and runs it
(:func:`plastic_hotspots.maps.demo.run_demo`); ``tools/build_maha_oya_example.py`` builds it from the
shared data.
"""
