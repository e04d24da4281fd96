"""The import rules of the codebase, checked on the real tree (and the checker checked on a bad one)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("plastic_hotspots", "annotations", "training", "detector", "maps")
# Each heavy library may be imported by one module only (its adapter); None: not used yet.
ADAPTERS: dict[str, str | None] = {
    "ultralytics": "detector/yolo.py",
    "torch": "detector/yolo.py",
    "label_studio_sdk": "annotations/labelstudio.py",
    "onnxruntime": "detector/runtime.py",
    "openvino": "detector/runtime.py",
    "folium": "maps/render.py",
    "numba": "maps/compiled.py",
    "pysheds": None,
    "dask": "plastic_hotspots/cluster.py",
    "distributed": "plastic_hotspots/cluster.py",
    "ray": None,
}
ML = ("torch", "torchvision", "ultralytics", "cv2", "label_studio_sdk", "onnxruntime", "openvino")
SCALE = ("dask", "distributed")


def imported_roots(path: Path) -> set[str]:
    """Top-level names of every module a file imports, anywhere in it (lazy imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def rule_violations(root: Path) -> list[str]:
    """Every breach of the import rules in the tree under ``root``."""
    problems: list[str] = []
    importers: dict[str, list[str]] = {lib: [] for lib in ADAPTERS}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            roots = imported_roots(path)
            for lib in ADAPTERS:
                if lib in roots:
                    importers[lib].append(rel)
            if rel == "plastic_hotspots/records.py":
                extra = roots - {
                    "__future__",
                    "json",
                    "math",
                    "collections",
                    "dataclasses",
                    "datetime",
                    "typing",
                    "numpy",
                    "plastic_hotspots",
                }
                if extra:
                    problems.append(
                        f"{rel} may import only the standard library and numpy, imports {sorted(extra)}"
                    )
            if package == "maps" and roots & set(ML):
                problems.append(f"{rel} (map stack) imports the ML stack: {sorted(roots & set(ML))}")
    for lib, files in importers.items():
        allowed = ADAPTERS[lib]
        if lib == "ray" and files:
            problems.append(f"ray must never be used (it probes non-loopback addresses): {files}")
        elif len(files) > 1 or (files and files != [allowed]):
            problems.append(f"{lib} is imported by {files}; only {allowed or 'no module yet'} may import it")
    return problems


def test_the_tree_keeps_the_import_rules() -> None:
    assert rule_violations(ROOT) == []


def test_the_checker_catches_a_second_ultralytics_importer(tmp_path: Path) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "detector" / "yolo.py").write_text("import ultralytics\n")
    (tmp_path / "detector" / "other.py").write_text("def f():\n    from ultralytics import YOLO\n")
    (tmp_path / "maps" / "bad.py").write_text("import torch\n")
    problems = rule_violations(tmp_path)
    assert any("ultralytics is imported by" in p for p in problems)
    assert any("map stack) imports the ML stack" in p for p in problems)


@pytest.mark.parametrize(
    "modules",
    [
        "maps, maps.pipeline, maps.render, maps.demo, maps.cli, maps.layers",
        "plastic_hotspots.cli",
        "detector, training, annotations",
        "plastic_hotspots.cluster, detector.run, detector.workers, detector.cli",
    ],
)
def test_importing_does_not_load_the_ml_stack(modules: str) -> None:
    heavy = ML + SCALE
    code = f"import sys; import {modules}; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""
