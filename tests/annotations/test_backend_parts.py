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


def test_the_backend_command_serves_until_sigterm_and_refuses_a_loop_without_its_project(
    tmp_path: Path,
) -> None:
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    base = [
        sys.executable,
        "-m",
        "plastic_hotspots.cli",
        "annotate",
        "backend",
        "--state-dir",
        str(tmp_path / "s"),
    ]
    env = {**os.environ, "PLASTIC_HOTSPOTS_CACHE": str(tmp_path / "cache")}
    refused = subprocess.run(
        [*base, "--retrain-after", "5"], capture_output=True, text=True, env=env, check=False
    )
    assert refused.returncode == 1
    assert "needs the project and the photos" in refused.stderr
    assert "Traceback" not in refused.stderr

    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    serve = subprocess.Popen([*base, "--port", "0"], text=True, env=env, **pipes)
    try:
        assert serve.stdout is not None
        line = serve.stdout.readline()  # "ML backend serving <version> at <url> (token: ...)"
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        with urllib.request.urlopen(f"{url}/health", timeout=30) as response:
            assert json.loads(response.read())["status"] == "UP"
        assert (tmp_path / "s" / "backend-token").stat().st_mode & 0o777 == 0o600
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=30) == 0
    finally:
        if serve.poll() is None:
            serve.kill()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the port is closed with the process
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
        except OSError:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the backend still answers after SIGTERM")


def test_concurrent_predictions_agree(tmp_path: Path) -> None:
    import base64
    import json
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    from plastic_hotspots.annotations.backend import BACKEND_USER, ModelService, backend_token, start_backend

    rng = np.random.default_rng(0)
    (tmp_path / "root" / "s").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(
        tmp_path / "root" / "s" / "a.jpg"
    )
    token = backend_token(tmp_path / "state")
    running = start_backend(ModelService(None), PhotoSource(tmp_path / "root"), token, port=0)
    auth = "Basic " + base64.b64encode(f"{BACKEND_USER}:{token}".encode()).decode()
    body = json.dumps(
        {"tasks": [{"id": 1, "data": {"image": "/data/local-files/?d=s/a.jpg", "key": "s/a.jpg"}}]}
    )

    def ask(_: int) -> dict[str, object]:
        headers = {"Authorization": auth, "Content-Type": "application/json"}
        request = urllib.request.Request(f"{running.url}/predict", body.encode(), headers, method="POST")
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    try:
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(ask, range(6)))
    finally:
        running.stop()
    assert all(a == answers[0] for a in answers)
    (result,) = answers[0]["results"]  # type: ignore[misc]
    assert result["model_version"].startswith("litter-baseline.pt sha256:")
    assert 0.0 <= result["score"] <= 1.0
