"""A basin's input layers onto its grid: rasters, population, vectors and survey observations."""
