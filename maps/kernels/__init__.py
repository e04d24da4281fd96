"""The compiled (numba) inner loops and the per-window numpy kernels; the only numba importer."""
