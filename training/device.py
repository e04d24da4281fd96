"""Which device to train on."""

from __future__ import annotations


def auto_device() -> str:
    """``"0"`` when a CUDA GPU is visible, else ``"cpu"`` (asks PyTorch through the detector's adapter)."""
    from plastic_hotspots.detector.yolo import cuda_available

    return "0" if cuda_available() else "cpu"
