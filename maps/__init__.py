"""Detections and layers -> hotspot grids -> interactive maps.

Importing this package imports no ML library (no torch, no ultralytics); heavy map libraries are
imported inside the modules that use them.
"""
