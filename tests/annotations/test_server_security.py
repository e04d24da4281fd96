"""A local Label Studio that keeps its secrets: what it shows, file modes, passwords, ports, stopping."""

from __future__ import annotations

import contextlib
import http.cookiejar
import http.server
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from plastic_hotspots.annotations.errors import AnnotationError, ServerError
from plastic_hotspots.annotations.labelstudio import LabelStudioClient, ProjectSettings
from plastic_hotspots.annotations.server import (
    ADMIN_EMAIL,
    LocalServer,
    _wait_until_up,
    check_port_free,
    secure_data_dir,
    start_local_server,
)
from plastic_hotspots.annotations.tasks import scan_photos
from plastic_hotspots.annotations.workflow import MIRROR, add_volunteer, check_title, init, place_photo, push
from plastic_hotspots.cli import main

SECRET = b"TOP-SECRET-not-for-volunteers\n"


def _photo(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _fetch(url: str, key: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {key}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _web_login(url: str, email: str, password: str) -> bool:
    """Whether Label Studio's login page accepts this email and password (it redirects on success)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect())
    opener.open(f"{url}/user/login/", timeout=30).read()
    token = next(c.value for c in jar if c.name == "csrftoken")
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "email": email, "password": password})
    try:
        with opener.open(f"{url}/user/login/", data=form.encode(), timeout=30) as response:
            return bool(response.status == 302)
    except urllib.error.HTTPError as exc:
        return exc.code == 302


@pytest.fixture(scope="module")
def client(label_studio: tuple[str, str, Path]) -> LabelStudioClient:
    url, key, _ = label_studio
    return LabelStudioClient(url, key)


def test_only_pushed_photos_are_served(
    client: LabelStudioClient,
    label_studio_server: LocalServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = label_studio_server
    root = server.document_root
    assert root is not None
    photos = root / "guarded"
    _photo(photos / "a.jpg", 1)
    _photo(photos / "s" / "b.jpg", 2)
    (photos / "s" / "alias.jpg").symlink_to(photos / "a.jpg")  # a link inside the folder is fine
    _photo(photos / ".cache" / "thumb.jpg", 3)  # hidden: never a photo
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    _photo(outside / "elsewhere.jpg", 4)  # an image, but not in the folder
    (photos / "s" / "passwd.jpg").symlink_to(outside / "secret.txt")
    (photos / "s" / "key.jpg").symlink_to(server.data_dir / "api-key")
    (photos / "other.jpg").symlink_to(outside / "elsewhere.jpg")

    pid, _ = init(client, "guarded photos", overlap=1)
    summary = push(client, "guarded photos", photos, document_root=root)
    assert (summary.found, summary.added) == (3, 3)
    assert sorted(summary.refused) == [
        ("other.jpg", "links outside the photo folder"),
        ("s/key.jpg", "links outside the photo folder"),
        ("s/passwd.jpg", "links outside the photo folder"),
    ]
    ids = client.task_ids_and_keys(pid)
    assert sorted(ids) == ["a.jpg", "s/alias.jpg", "s/b.jpg"]

    # A pushed photo is served, from a hard link in the private mirror.
    mirror = root / MIRROR / str(pid)
    assert stat.S_IMODE(mirror.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / MIRROR).stat().st_mode) == 0o700
    assert (mirror / "a.jpg").stat().st_ino == (photos / "a.jpg").stat().st_ino
    task = json.loads(_fetch(f"{server.url}/api/tasks/{ids['s/b.jpg']}/", server.api_key)[1])
    assert task["data"]["image"].startswith(f"/data/local-files/?d={MIRROR}/{pid}/")
    status, body = _fetch(server.url + task["data"]["image"], server.api_key)
    assert (status, body) == (200, (photos / "s" / "b.jpg").read_bytes())

    # Nothing else: not the links, not the user's folder, whichever path is asked for.
    for d in (
        "guarded/s/passwd.jpg", "guarded/s/key.jpg", "guarded/a.jpg",
        f"{MIRROR}/{pid}/s/passwd.jpg", f"{MIRROR}/{pid}/s/key.jpg", f"{MIRROR}/{pid}/other.jpg",
        f"{MIRROR}/{pid}/../../guarded/s/passwd.jpg",
    ):  # fmt: skip
        status, body = _fetch(f"{server.url}/data/local-files/?d={urllib.parse.quote(d)}", server.api_key)
        assert status in (403, 404), d
        assert SECRET.strip() not in body, d
        assert server.api_key.encode() not in body, d

    # The command line names what it refused.
    monkeypatch.setenv("LABEL_STUDIO_URL", server.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", server.api_key)
    assert (
        main(["annotate", "push", str(photos), "--project", "guarded photos", "--document-root", str(root)])
        == 0
    )
    out = capsys.readouterr().out
    assert "3 photos: 0 added, 3 already in the project" in out
    assert "3 files refused" in out
    assert "s/passwd.jpg links outside the photo folder" in out


def test_only_regular_files_inside_the_folder_are_scanned(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    _photo(photos / "a.jpg", 1)
    (photos / "gone.jpg").symlink_to(tmp_path / "missing.jpg")
    os.mkfifo(photos / "pipe.jpg")  # would block a reader forever
    _photo(photos / ".hidden" / "b.jpg", 2)
    _photo(photos / "d" / ".c.jpg", 3)
    refused: list[tuple[str, str]] = []
    assert [p.key for p in scan_photos(photos, refused)] == ["a.jpg"]
    assert refused == [("gone.jpg", "is a broken link"), ("pipe.jpg", "is not a regular file")]


def test_a_photo_is_copied_where_it_cannot_be_linked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _photo(tmp_path / "a.jpg", 1)
    target = tmp_path / "mirror" / "a.jpg"
    target.parent.mkdir()

    def no_link(*args: object, **kwargs: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    place_photo(tmp_path / "a.jpg", target)
    assert target.read_bytes() == (tmp_path / "a.jpg").read_bytes()
    assert target.stat().st_ino != (tmp_path / "a.jpg").stat().st_ino
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    before = target.stat().st_ino
    place_photo(tmp_path / "a.jpg", target)  # an unchanged photo is not copied again
    assert target.stat().st_ino == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.jpg"]  # no temporary file left


def test_data_folder_and_secrets_are_private(label_studio_server: LocalServer) -> None:
    data = label_studio_server.data_dir
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("label_studio.sqlite3", "api-key", "admin-password", "secret-key", "server.log"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    password = (data / "admin-password").read_text().strip()
    assert len(password) >= 20
    assert password != label_studio_server.api_key
    assert _web_login(label_studio_server.url, ADMIN_EMAIL, password)
    assert not _web_login(label_studio_server.url, ADMIN_EMAIL, label_studio_server.api_key)


def test_a_restart_tightens_an_older_data_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    for name in ("label_studio.sqlite3", "label_studio.sqlite3-wal", "api-key", "server.log"):
        (data / name).write_text("x")
        (data / name).chmod(0o644)
    secure_data_dir(data)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("label_studio.sqlite3", "label_studio.sqlite3-wal", "api-key", "server.log"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name


def test_volunteer_gets_an_own_login_with_a_private_password(
    label_studio_server: LocalServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = label_studio_server
    monkeypatch.setenv("LABEL_STUDIO_URL", server.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", server.api_key)
    given = tmp_path / "for-ana"
    args = ["annotate", "volunteers", "add", "ana@example.org", "--data-dir", str(server.data_dir)]
    assert main([*args, "--password-file", str(given)]) == 0
    out = capsys.readouterr().out
    password = given.read_text().strip()
    assert stat.S_IMODE(given.stat().st_mode) == 0o600
    assert "ana@example.org created" in out
    assert str(given) in out
    assert password not in out
    assert server.api_key not in out
    assert _web_login(server.url, "ana@example.org", password)

    # Again with the same file: refused, the password stays; by default the file goes in the data folder.
    assert main([*args, "--password-file", str(given)]) == 1
    assert "exists already" in capsys.readouterr().err
    assert given.read_text().strip() == password
    assert main(args) == 0
    default = server.data_dir / "volunteers" / "ana@example.org"
    assert stat.S_IMODE(default.stat().st_mode) == 0o600
    assert stat.S_IMODE(default.parent.stat().st_mode) == 0o700
    assert "exists; its password was replaced" in capsys.readouterr().out
    assert _web_login(server.url, "ana@example.org", default.read_text().strip())
    assert not _web_login(server.url, "ana@example.org", password)

    # Without the server's database nothing is made: no account, no password file.
    client = LabelStudioClient(server.url, server.api_key)
    with pytest.raises(AnnotationError, match="no Label Studio database"):
        add_volunteer(client, "ben@example.org", tmp_path / "elsewhere", tmp_path / "for-ben")
    assert not (tmp_path / "for-ben").exists()
    assert "ben@example.org" not in client.user_emails().values()


def test_titles_are_checked_before_the_server_is_asked(
    client: LabelStudioClient, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for bad, words in [("", "empty"), ("   ", "empty"), ("x" * 51, "3 to 50"), (" Chiang Rai", "space")]:
        with pytest.raises(AnnotationError, match=words):
            check_title(bad)
    check_title("x" * 50)
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)  # no server: the title is refused first
    assert main(["annotate", "init", "--project", "y" * 60]) == 1
    err = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    assert "60 characters" in err
    assert "a title of 3 to 50 characters" in err
    assert main(["annotate", "init", "--project", " "]) == 1
    assert "title is empty" in capsys.readouterr().err

    # Should the server refuse a value anyway, its words and the field are in the message.
    with pytest.raises(ServerError) as info:
        client.init_project(ProjectSettings("z" * 60, "<View></View>", ""))
    assert "title: Ensure this field has no more than 50 characters." in info.value.message


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _label_studio_processes() -> set[int]:
    import psutil

    me = psutil.Process()
    return {p.pid for p in me.children(recursive=True) if "label-studio" in " ".join(p.cmdline())}


def test_a_taken_port_is_named_before_start(listener: int, tmp_path: Path) -> None:
    pytest.importorskip("psutil")
    _executable()
    before = _label_studio_processes()
    with pytest.raises(ServerError, match=f"port {listener} on 127.0.0.1 is already in use") as info:
        start_local_server(tmp_path / "data", port=listener)
    assert "--port 0" in info.value.hint
    assert _label_studio_processes() == before
    assert not (tmp_path / "data").exists()  # refused before anything was made
    check_port_free(_free())  # a free port passes


def _free() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_stranger_answering_at_the_port_is_not_taken_for_ours(tmp_path: Path) -> None:
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"email": "someone@else"}')

        def log_message(self, *args: object) -> None:
            pass

    stranger = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=stranger.serve_forever, daemon=True).start()
    port = int(stranger.server_address[1])
    child = subprocess.Popen(["sleep", "60"], start_new_session=True)  # stands in for label-studio
    server = LocalServer(f"http://127.0.0.1:{port}", "k" * 40, tmp_path, child, tmp_path / "log")
    try:
        with pytest.raises(ServerError, match=f"another server answers on port {port}"):
            _wait_until_up(server, port, timeout_s=30)
    finally:
        server.stop(timeout_s=5)
        stranger.shutdown()
    assert child.returncode is not None


def _start_serve(data: Path) -> subprocess.Popen[str]:
    """`plastic-hotspots annotate serve` on a free port, as a user starts it, its output piped."""
    cmd = [sys.executable, "-m", "plastic_hotspots.cli", "annotate", "serve", "--data-dir", str(data),
           "--port", "0"]  # fmt: skip
    env = {**os.environ, "PLASTIC_HOTSPOTS_LABEL_STUDIO": str(_executable())}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def test_sigterm_to_serve_stops_label_studio(tmp_path: Path) -> None:
    psutil = pytest.importorskip("psutil")
    data = tmp_path / "data"
    data.mkdir(mode=0o755)  # as an older version left it
    serve = _start_serve(data)
    lines = []
    children: list[psutil.Process] = []
    try:
        assert serve.stdout is not None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = serve.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("web login"):
                break
        assert any("is running at" in x for x in lines), "".join(lines)
        children = psutil.Process(serve.pid).children(recursive=True)
        assert any("label-studio" in " ".join(c.cmdline()) for c in children)
        key = (data / "api-key").read_text().strip()
        password = (data / "admin-password").read_text().strip()
        assert key not in "".join(lines)
        assert password not in "".join(lines)
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        serve.send_signal(signal.SIGTERM)
        rest, _ = serve.communicate(timeout=90)
    finally:
        _reap(serve, children)
    assert serve.returncode == 0, "".join(lines) + rest
    assert "Label Studio stopped" in rest
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, [p.cmdline() for p in alive]


def _reap(serve: subprocess.Popen[str], children: list[Any]) -> None:
    """After a failed test: kill serve and whatever it started, so no server outlives the test."""
    import psutil

    if serve.poll() is None:
        with contextlib.suppress(psutil.Error):
            children = children + psutil.Process(serve.pid).children(recursive=True)
        serve.kill()
        serve.wait()
    for child in children:
        with contextlib.suppress(Exception):
            child.kill()


def _executable() -> Path:
    from plastic_hotspots.annotations.server import find_executable

    try:
        return find_executable()
    except ServerError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {exc.message}")
        pytest.skip(exc.message)


def test_sigterm_while_label_studio_starts_stops_it_too(tmp_path: Path) -> None:
    psutil = pytest.importorskip("psutil")
    serve = _start_serve(tmp_path)
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while not children and time.monotonic() < deadline:
            time.sleep(0.2)
            children = psutil.Process(serve.pid).children(recursive=True)
        assert children, "serve did not start label-studio"
        serve.send_signal(signal.SIGTERM)  # migrations take a while: it is not up yet
        out, _ = serve.communicate(timeout=90)
    finally:
        _reap(serve, children)
    assert "stopped before Label Studio was up" in out
    assert serve.returncode == 0
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, [p.cmdline() for p in alive]
