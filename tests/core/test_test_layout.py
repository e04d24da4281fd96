"""Test modules are imported by basename (no __init__.py in test folders): names must be unique."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_module_names_are_unique() -> None:
    names = Counter(p.name for p in TESTS.rglob("*.py") if p.name != "__init__.py")
    assert [n for n, k in names.items() if k > 1] == []
