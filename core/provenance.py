"""Stamping derived artefacts with how they were made."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from plastic_hotspots import __version__
from plastic_hotspots.records import Provenance, Scalar


def make_provenance(
    tool: str,
    parameters: Mapping[str, Scalar] | None = None,
    inputs: Iterable[str] = (),
    model: str | None = None,
) -> Provenance:
    """Build the provenance of an artefact made now by this version of the project.

    Args:
        tool: The function or subcommand that made it, e.g. ``"maps.hotspots"``.
        parameters: The parameters that shaped the result.
        inputs: Paths or content hashes of the inputs.
        model: Model name and hash, where a model was used.

    Returns:
        The provenance record.
    """
    return Provenance(
        tool=tool,
        version=__version__,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        parameters=dict(parameters or {}),
        inputs=tuple(inputs),
        model=model,
    )


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file's content, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()
