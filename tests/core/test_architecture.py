"""The import rules of the codebase, checked on the real tree (and the checker checked on a bad one)."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Folder in the repository -> the package it is installed as (the one installed name, plastic_hotspots).
FOLDERS = {
    "core": "plastic_hotspots",
    "annotations": "plastic_hotspots.annotations",
    "training": "plastic_hotspots.training",
    "detector": "plastic_hotspots.detector",
    "maps": "plastic_hotspots.maps",
}
# Each heavy library may be imported by one module only (its adapter); None: not used yet.
ADAPTERS: dict[str, str | None] = {
    "ultralytics": "detector/yolo.py",
    "torch": "detector/yolo.py",
    "label_studio_sdk": "annotations/labelstudio.py",
    "onnxruntime": "detector/runtime.py",
    "openvino": "detector/runtime.py",
    "nncf": "detector/runtime.py",
    "folium": "maps/render/webmap.py",
    "numba": "maps/kernels/compiled.py",
    "pysheds": None,
    "dask": "core/cluster.py",
    "distributed": "core/cluster.py",
    "ray": None,
}
ML = ("torch", "torchvision", "ultralytics", "cv2", "label_studio_sdk", "onnxruntime", "openvino")
SCALE = ("dask", "distributed")
MAPS = "plastic_hotspots.maps"
# The layers of the map stack, lowest first: a module may import a lower layer, or its own subpackage.
# Modules at the root of maps/ not named here are the base (errors, params, grid, config: layer 0);
# cli and demo are near the top, the package itself (its lazy public API) at the top.
MAPS_LAYERS: dict[str, int] = {
    "kernels": 1,
    "io": 2,
    "inputs": 3,
    "science": 4,
    "survey": 4,
    "wholegrid": 5,
    "large": 5,
    "render": 5,
    "cli": 7,
    "demo": 6,
    "examples": 6,  # data only: the packaged example basins that demo copies out
    "__init__": 8,
}
# render reads result files only: besides itself it may import the base and io, nothing of the model.
RENDER_MAY_IMPORT = {"io"}
MAX_MAPS_ROOT_MODULES = 8


def imported_modules(path: Path) -> set[str]:
    """Dotted names of every module a file imports, anywhere in it (lazy imports included).

    ``from a.b import c`` gives ``a.b`` and ``a.b.c`` (``c`` may be a module).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def private_imports(path: Path) -> list[str]:
    """``module.name`` of each private name (one leading underscore) a file imports from the project."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("plastic_hotspots")
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]


def maps_part(module: str) -> str:
    """The layer key of a module under plastic_hotspots.maps: its subpackage, or its own name at the root."""
    rest = module[len(MAPS) + 1 :].split(".") if module != MAPS else ["__init__"]
    return rest[0]


def maps_layer(part: str) -> int:
    return MAPS_LAYERS.get(part, 0)


def maps_direction_problems(module: str, imports: set[str], rel: str, known: set[str]) -> list[str]:
    """Imports of a maps module that run against the layers (lower may never import higher)."""
    problems: list[str] = []
    part = maps_part(module)
    for name in sorted(imports):
        target = name
        if target not in known and target.rsplit(".", 1)[0] in known:
            target = target.rsplit(".", 1)[0]  # `from package.module import name`: the module
        if not target.startswith(MAPS) or target not in known:
            continue
        other = maps_part(target)
        if other == part and part in MAPS_LAYERS:
            continue  # within one subpackage
        if part == "render" and maps_layer(other) not in (0,) and other not in RENDER_MAY_IMPORT:
            problems.append(f"{rel} (render reads result files only) imports {target}")
        elif maps_layer(other) >= maps_layer(part) and not (part == other == "__init__"):
            if maps_layer(part) == 0 and maps_layer(other) == 0:
                continue  # the base modules use each other (config reads params)
            problems.append(f"{rel} (layer {part}) imports {target} (layer {other}): imports run one way")
    return problems


def module_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root)
    parts = list(rel.with_suffix("").parts)
    prefix = FOLDERS[parts[0]]
    rest = parts[1:]
    if rest and rest[-1] == "__init__":
        rest = rest[:-1]
    return ".".join([prefix, *rest])


def rule_violations(root: Path) -> list[str]:
    """Every breach of the import rules in the tree under ``root``."""
    problems: list[str] = []
    importers: dict[str, list[str]] = {lib: [] for lib in ADAPTERS}
    files = {
        path: module_name(root, path) for folder in FOLDERS for path in sorted((root / folder).rglob("*.py"))
    }
    known = set(files.values())
    for path, module in files.items():
        rel = path.relative_to(root).as_posix()
        imports = imported_modules(path)
        roots = {name.split(".")[0] for name in imports}
        for lib in ADAPTERS:
            if lib in roots:
                importers[lib].append(rel)
        old = roots & {"maps", "detector", "training", "annotations"}
        if old:
            problems.append(f"{rel} imports {sorted(old)}: installed only as plastic_hotspots.<stage>")
        if rel == "core/records.py":
            extra = roots - {"__future__", "json", "math", "collections", "dataclasses", "datetime", "typing"}
            extra -= {"numpy", "plastic_hotspots"}
            if extra:
                problems.append(
                    f"{rel} may import only the standard library and numpy, imports {sorted(extra)}"
                )
        problems += [f"{rel} imports the private {name}" for name in private_imports(path)]
        if module.startswith(MAPS):
            if roots & set(ML):
                problems.append(f"{rel} (map stack) imports the ML stack: {sorted(roots & set(ML))}")
            problems += maps_direction_problems(module, imports, rel, known)
    for lib, users in importers.items():
        allowed = ADAPTERS[lib]
        if lib == "ray" and users:
            problems.append(f"ray must never be used (it probes non-loopback addresses): {users}")
        elif len(users) > 1 or (users and users != [allowed]):
            problems.append(f"{lib} is imported by {users}; only {allowed or 'no module yet'} may import it")
    root_modules = sorted(p.name for p in (root / "maps").glob("*.py"))
    if len(root_modules) > MAX_MAPS_ROOT_MODULES:
        problems.append(
            f"maps/ has {len(root_modules)} modules at its root (at most {MAX_MAPS_ROOT_MODULES})"
        )
    for sub in sorted(p for p in (root / "maps").iterdir() if p.is_dir() and p.name != "__pycache__"):
        if sub.name not in MAPS_LAYERS:
            problems.append(f"maps/{sub.name}/ has no place in the layers of the map stack")
        init = sub / "__init__.py"
        if not init.is_file() or not ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))):
            problems.append(f"maps/{sub.name}/__init__.py must say in a docstring what the subpackage holds")
    return problems


def test_the_tree_keeps_the_import_rules() -> None:
    assert rule_violations(ROOT) == []


def _tree(tmp_path: Path) -> Path:
    for folder in FOLDERS:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    for sub in ("kernels", "science", "render", "io"):
        (tmp_path / "maps" / sub).mkdir()
        (tmp_path / "maps" / sub / "__init__.py").write_text('"""A part."""\n')
    return tmp_path


def test_the_checker_catches_a_second_ultralytics_importer(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "detector" / "yolo.py").write_text("import ultralytics\n")
    (root / "detector" / "other.py").write_text("def f():\n    from ultralytics import YOLO\n")
    (root / "maps" / "bad.py").write_text("import torch\n")
    problems = rule_violations(root)
    assert any("ultralytics is imported by" in p for p in problems)
    assert any("map stack) imports the ML stack" in p for p in problems)


def test_the_checker_catches_imports_against_the_layers(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "maps" / "kernels" / "compiled.py").write_text("import numba\n")
    (root / "maps" / "science" / "terrain.py").write_text(
        "from plastic_hotspots.maps.kernels import compiled\n"
    )
    (root / "maps" / "io" / "bands.py").write_text("")
    (root / "maps" / "render" / "report.py").write_text("from plastic_hotspots.maps.io.bands import x\n")
    assert rule_violations(root) == []  # the right way round
    # planted: a kernel reaching up into the model, render reaching into the model, an old top-level name
    (root / "maps" / "kernels" / "bad.py").write_text(
        "def f():\n    from plastic_hotspots.maps.science.terrain import fill\n"
    )
    (root / "maps" / "render" / "bad.py").write_text("import plastic_hotspots.maps.science.terrain\n")
    (root / "maps" / "grid.py").write_text("from plastic_hotspots.maps.io import bands\n")
    (root / "detector" / "old.py").write_text("from maps.grid import rowcol\n")
    (root / "maps" / "science" / "peek.py").write_text(
        "from plastic_hotspots.maps.kernels.compiled import _flood\n"
    )
    for i in range(8):
        (root / "maps" / f"extra{i}.py").write_text("")
    (root / "maps" / "misc").mkdir()
    problems = rule_violations(root)
    assert any(
        "maps/kernels/bad.py (layer kernels) imports plastic_hotspots.maps.science.terrain" in p
        for p in problems
    )
    assert any("maps/render/bad.py (render reads result files only)" in p for p in problems)
    assert any("maps/grid.py (layer grid) imports plastic_hotspots.maps.io.bands" in p for p in problems)
    assert any("detector/old.py imports ['maps']" in p for p in problems)
    assert any(
        "maps/science/peek.py imports the private plastic_hotspots.maps.kernels.compiled._flood" in p
        for p in problems
    )
    assert any("modules at its root" in p for p in problems)
    assert any("maps/misc/ has no place" in p for p in problems)


def test_the_wheel_lists_every_package_folder() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    package_dir = config["package-dir"]
    assert {package_dir[name]: name for name in package_dir} == FOLDERS
    folders = {module_name(ROOT, init) for folder in FOLDERS for init in (ROOT / folder).rglob("__init__.py")}
    assert sorted(config["packages"]) == sorted(folders)


@pytest.mark.parametrize(
    "modules",
    [
        "plastic_hotspots.maps, plastic_hotspots.maps.wholegrid.run, plastic_hotspots.maps.render.webmap, "
        "plastic_hotspots.maps.demo, plastic_hotspots.maps.cli, plastic_hotspots.maps.inputs.rasters",
        "plastic_hotspots.cli",
        "plastic_hotspots.detector, plastic_hotspots.training, plastic_hotspots.annotations",
        "plastic_hotspots.cluster, plastic_hotspots.detector.run, plastic_hotspots.detector.workers, "
        "plastic_hotspots.detector.cli",
    ],
)
def test_importing_does_not_load_the_ml_stack(modules: str) -> None:
    heavy = ML + SCALE
    code = f"import sys; import {modules}; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


def test_rendering_loads_neither_numba_nor_the_model() -> None:
    code = (
        "import sys; import plastic_hotspots.maps.render.webmap, plastic_hotspots.maps.render.report; "
        "print(','.join(sorted(m for m in sys.modules if m == 'numba' "
        "or m.startswith(('plastic_hotspots.maps.science', 'plastic_hotspots.maps.kernels', "
        "'plastic_hotspots.maps.wholegrid', 'plastic_hotspots.maps.large')))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""
