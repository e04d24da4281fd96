"""The ML backend's parts that need no Label Studio: where photos are read from, and who gets the key."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from plastic_hotspots.annotations.backend import PhotoSource, local_photo
from plastic_hotspots.annotations.errors import AnnotationError


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((8, 12, 3), 200, dtype=np.uint8)).save(out, format="JPEG")
    return out.getvalue()


@pytest.fixture
def servers() -> Iterator[tuple[str, str, list[tuple[str, str | None]]]]:
    """Two photo servers on 127.0.0.1 (two origins) recording the Authorization header each request had."""
    seen: list[tuple[str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Authorization")))
            body = _jpeg()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    made = [HTTPServer(("127.0.0.1", 0), Handler) for _ in range(2)]
    for server in made:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield (*(f"http://127.0.0.1:{s.server_port}" for s in made), seen)  # type: ignore[misc]
    finally:
        for server in made:
            server.shutdown()
            server.server_close()


def test_the_label_studio_key_goes_to_label_studio_only(
    servers: tuple[str, str, list[tuple[str, str | None]]],
) -> None:
    label_studio, elsewhere, seen = servers
    photos = PhotoSource(None, label_studio, "secret-key")
    assert photos.read("/data/upload/1/a.jpg").shape == (8, 12, 3)  # a path on the server: with the key
    assert photos.read(f"{elsewhere}/photos/b.jpg").shape == (8, 12, 3)  # a task's URL elsewhere: without
    assert [auth for _, auth in seen] == ["Token secret-key", None]


def test_local_photos_must_lie_under_the_document_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "s").mkdir(parents=True)
    (root / "s" / "a.jpg").write_bytes(_jpeg())
    (tmp_path / "secret.jpg").write_bytes(_jpeg())
    (root / "s" / "link.jpg").symlink_to(tmp_path / "secret.jpg")
    assert local_photo("/data/local-files/?d=s/a.jpg", root) == (root / "s" / "a.jpg").resolve()
    for bad in ("/data/local-files/?d=../secret.jpg", "/data/local-files/?d=s/link.jpg",
                "/data/local-files/?d=s/missing.jpg", "https://example.org/a.jpg"):  # fmt: skip
        with pytest.raises(AnnotationError):
            local_photo(bad, root)
