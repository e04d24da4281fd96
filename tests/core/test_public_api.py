"""The stage packages' public names: each one resolves, and importing a package stays light."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [
    "plastic_hotspots.detector",
    "plastic_hotspots.training",
    "plastic_hotspots.annotations",
    "plastic_hotspots.maps",
]
HEAVY = ("torch", "ultralytics", "label_studio_sdk")


@pytest.mark.parametrize("package", PACKAGES)
def test_importing_the_package_loads_no_ml_library_and_none_of_its_modules(package: str) -> None:
    code = (
        f"import sys; import {package}; "
        f"print(','.join(sorted(m for m in sys.modules if m in {HEAVY!r} or m.startswith('{package}.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_resolves_to_its_definition(package: str) -> None:
    module = importlib.import_module(package)
    names = module.__all__
    assert names, f"{package} lists no public names"
    assert len(set(names)) == len(names)
    for name in names:
        value = getattr(module, name)
        defined_in = importlib.import_module(value.__module__)
        assert getattr(defined_in, name) is value
        assert value.__module__.startswith(f"{package}.")
        assert name in dir(module)


def type_checking_imports(package: str) -> dict[str, str]:
    """The names the package imports under ``if TYPE_CHECKING:`` (for type checkers), with their module."""
    init = Path(importlib.import_module(package).__file__ or "")
    names: dict[str, str] = {}
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom)
                names.update({alias.name: str(imp.module) for alias in imp.names})
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_type_checkers_see_the_public_names_where_they_are_loaded_from(package: str) -> None:
    module = importlib.import_module(package)
    declared = type_checking_imports(package)
    assert sorted(declared) == sorted(module.__all__)
    for name, source in declared.items():
        assert getattr(module, name).__module__ == source, name


@pytest.mark.parametrize("package", PACKAGES)
def test_no_public_name_is_also_a_module_of_the_package(package: str) -> None:
    folder = Path(importlib.import_module(package).__file__ or "").parent
    modules = {p.stem for p in folder.glob("*.py")}
    assert modules & set(importlib.import_module(package).__all__) == set()


def test_a_name_that_is_not_public_is_an_attribute_error() -> None:
    detector = importlib.import_module("plastic_hotspots.detector")
    with pytest.raises(AttributeError, match="has no attribute 'YoloDetectr'"):
        getattr(detector, "YoloDetectr")  # noqa: B009


@pytest.mark.parametrize("package", PACKAGES)
def test_star_import_gives_the_public_names(package: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {package} import *", namespace)
    public = importlib.import_module(package).__all__
    assert sorted(k for k in namespace if not k.startswith("__")) == sorted(public)
