"""The large mode: a basin larger than memory computed tile by tile, equal to the whole-grid run."""
