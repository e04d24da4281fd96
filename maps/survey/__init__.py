"""Observed litter density from surveys: the density estimate, Gi* cells and the fusion with the model."""
