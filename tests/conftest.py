"""Shared fixtures: where the real data lives, and the rule that CI must run the real-data tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from plastic_hotspots.annotations.server import LocalServer

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def in_ci() -> bool:
    """Whether we run under CI (``CI=true``), where nothing may be skipped for lack of data or tools."""
    return os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: skipped on a fresh clone without it, a failure under CI."""
    if not SHARED_DATA.is_dir():
        if in_ci():
            pytest.fail(f"CI=true but the real data is missing: expected {SHARED_DATA} beside the project")
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


# Shared 2-core machines run tests at uneven speed: no per-example deadlines, same examples.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("plastic-hotspots", deadline=None, derandomize=True)
_hypothesis_settings.load_profile("plastic-hotspots")


@pytest.fixture(scope="session")
def label_studio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """A real Label Studio on 127.0.0.1, once per session, showing files under ``<tmp>/photos``."""
    from plastic_hotspots.annotations.errors import ServerError
    from plastic_hotspots.annotations.server import find_executable, start_local_server

    try:
        find_executable()
    except ServerError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {exc.message}: .ci/run must install Label Studio")
        pytest.skip(f"{exc.message} (make test installs it)")
    root = tmp_path_factory.mktemp("label-studio")
    photos_root = root / "photos"
    photos_root.mkdir()
    server = start_local_server(root / "data", document_root=photos_root)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def label_studio(label_studio_server: LocalServer) -> tuple[str, str, Path]:
    """The session's Label Studio as ``(url, api_key, document_root)``."""
    server = label_studio_server
    assert server.document_root is not None
    return server.url, server.api_key, server.document_root
