"""Volunteer labelling -> consensus -> training datasets."""
