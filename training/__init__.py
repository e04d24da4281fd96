"""Training datasets -> litter detection models, with evaluation."""
