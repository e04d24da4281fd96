"""The whole-grid run of the hotspot model: one basin held in memory, as named steps."""
