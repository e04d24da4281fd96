"""The hotspot model's science shared by both run modes: terrain, the model, basin steps, vectors."""
