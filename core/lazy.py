"""Public names of a package that are imported from their modules on first use (PEP 562).

A stage package lists its entry points in ``__all__`` and gets its module ``__getattr__`` and
``__dir__`` from :func:`lazy_names`, so ``import plastic_hotspots.detector`` imports none of its
modules (nor what they import) until a name is used.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_names(
    package: str, modules: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of a package whose names load on first use.

    Args:
        package: The package's ``__name__``.
        modules: The package's modules (relative names), each with the public names it defines.

    Returns:
        ``(__getattr__, __dir__)``, to assign at the top level of the package's ``__init__.py``.
    """
    where = {name: module for module, names in modules.items() for name in names}

    def attribute(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)  # found directly from now on
        return value

    def names() -> list[str]:
        return sorted({*vars(sys.modules[package]), *where})

    return attribute, names
