"""A ``sitecustomize`` that refuses every network connection, for tests that run code in a subprocess."""

from __future__ import annotations

from pathlib import Path

NO_NETWORK = """
import socket
def refuse(*args, **kwargs):
    raise OSError("network access attempted: " + repr(args))
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
"""


def no_network_site(folder: Path) -> Path:
    """A folder holding the refusing ``sitecustomize.py``: put it first on the subprocess's PYTHONPATH."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(NO_NETWORK)
    return folder
