"""The registry stores what a model is; promotion only replaces the default with a better model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_train_smoke import tiny_dataset

from plastic_hotspots.detector.yolo import build_tiny_model, default_model_path
from plastic_hotspots.training.registry import promote, register


def test_register_and_promote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLASTIC_HOTSPOTS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PLASTIC_HOTSPOTS_MODEL", raising=False)
    data = tiny_dataset(tmp_path / "ds")
    (data / "manifest.json").write_text(json.dumps({"version": "abc123"}))
    weights = build_tiny_model(tmp_path / "a.pt", {0: "bottle", 1: "can"}, config_dir=tmp_path / "cfg")
    made = register(weights, data, split="val", dataset=data, root=tmp_path / "registry")
    assert made.folder.name == f"litter-{made.sha256[:12]}"
    record = json.loads((made.folder / "record.json").read_text())
    assert record["dataset_version"] == "abc123"
    assert len(record["manifest_sha256"]) == 64
    assert {"map50", "map50_95", "per_class"} <= set(json.loads((made.folder / "metrics.json").read_text()))
    assert "bottle" in (made.folder / "MODEL_CARD.md").read_text()
    exports = list((made.folder / "weights.exports").glob("*/model.onnx"))
    assert exports
    assert list((made.folder / "weights.exports").glob("*/model_openvino.xml"))

    # No default anywhere: the candidate is promoted; an equally good one is not.
    monkeypatch.setattr("plastic_hotspots.detector.yolo.shipped_model_path", lambda: tmp_path / "none.pt")
    first = promote(weights, data, split="val")
    assert first.promoted
    assert first.current is None
    assert default_model_path() == tmp_path / "cache" / "models" / "litter-baseline.pt"
    other = build_tiny_model(tmp_path / "b.pt", {0: "bottle", 1: "can"}, seed=3, config_dir=tmp_path / "cfg")
    second = promote(other, data, split="val")
    assert second.current is not None
    assert second.promoted == (second.candidate > second.current)
    expected = other if second.promoted else weights
    assert default_model_path().read_bytes() == expected.read_bytes()
    same = promote(expected, data, split="val")  # the default itself is never "better" than itself
    assert not same.promoted
