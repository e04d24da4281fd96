"""A local Label Studio server for a field team or a test: loopback only, sqlite, nothing phoned home.

Label Studio lives in its own virtual environment (its pins fight the ML stack); this module starts its
``label-studio`` executable as a subprocess with analytics and version checks off, a fixed secret key and
an admin account whose API key is written to ``<data dir>/api-key`` (mode 0600) and never printed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from plastic_hotspots.annotations.errors import ServerError

EXECUTABLE_ENV = "PLASTIC_HOTSPOTS_LABEL_STUDIO"
ADMIN_EMAIL = "admin@plastic-hotspots.local"
#: Label Studio's default banned networks for outgoing requests (webhooks, ML backends, storages) but
#: loopback, where `annotate backend` runs.
BANNED_BUT_LOOPBACK = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
    "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "233.252.0.0/24", "240.0.0.0/4", "255.255.255.255/32", "::/128",
    "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001:0000::/32",
    "2001:20::/28", "2001:db8::/32", "2002::/16", "fc00::/7", "fe80::/10", "ff00::/8",
)  # fmt: skip


def find_executable(explicit: Path | None = None) -> Path:
    """The ``label-studio`` executable: ``explicit``, ``$PLASTIC_HOTSPOTS_LABEL_STUDIO``, or on PATH.

    Raises:
        ServerError: None is installed.
    """
    candidates = [explicit, Path(os.environ[EXECUTABLE_ENV]) if os.environ.get(EXECUTABLE_ENV) else None]
    on_path = shutil.which("label-studio")
    candidates.append(Path(on_path) if on_path else None)
    for candidate in candidates:
        if candidate is not None and candidate.is_file():
            return candidate
    raise ServerError(
        "Label Studio is not installed",
        hint="run `make .venv-labelstudio/bin/label-studio` (its own venv), or set "
        f"{EXECUTABLE_ENV} to a label-studio executable",
    )


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalServer:
    """A running Label Studio on loopback."""

    url: str
    api_key: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the server (terminate, then kill)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _api_key(data_dir: Path) -> str:
    path = data_dir / "api-key"
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    key = secrets.token_hex(20)
    path.touch(mode=0o600)
    path.write_text(key, encoding="utf-8")
    return key


def _secret(data_dir: Path) -> str:
    path = data_dir / "secret-key"
    if not path.is_file():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(40), encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()


def start_local_server(
    data_dir: Path,
    *,
    port: int | None = None,
    document_root: Path | None = None,
    executable: Path | None = None,
    timeout_s: float = 300.0,
) -> LocalServer:
    """Start Label Studio on ``127.0.0.1`` with its data in ``data_dir`` and wait until it answers.

    Args:
        data_dir: Database, uploads, API key and log (created; reused on a restart).
        port: TCP port (default: a free one).
        document_root: Folder whose files tasks may reference as ``/data/local-files/?d=...``.
        executable: The ``label-studio`` executable (default: :func:`find_executable`).
        timeout_s: How long the first start (database migrations) may take.

    Raises:
        ServerError: It is not installed, exits, or does not answer in time (the log is named).
    """
    exe = find_executable(executable)
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    key = _api_key(data_dir)
    env = {
        **os.environ,
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "COLLECT_ANALYTICS": "false",
        "LATEST_VERSION_CHECK": "false",
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_USERNAME": ADMIN_EMAIL,
        "LABEL_STUDIO_PASSWORD": key,
        "LABEL_STUDIO_USER_TOKEN": key,
        "SECRET_KEY": _secret(data_dir),
        "DJANGO_DB": "sqlite",
        "LOCAL_FILES_SERVING_ENABLED": "true" if document_root else "false",
        # The ML backend (`annotate backend`) and its webhook run beside it on loopback: every reserved
        # network Label Studio bans by default stays banned for its outgoing requests, except 127.0.0.0/8.
        "ML_BLOCK_LOCAL_IP": "false",
        "USE_DEFAULT_BANNED_SUBNETS": "false",
        "USER_ADDITIONAL_BANNED_SUBNETS": ",".join(BANNED_BUT_LOOPBACK),
    }
    if document_root:
        env["LOCAL_FILES_DOCUMENT_ROOT"] = str(Path(document_root).resolve())
    log = data_dir / "server.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=data_dir,
        )
    server = LocalServer(f"http://127.0.0.1:{port}", key, data_dir, process, log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"Label Studio exited with code {process.returncode}", hint=f"see {log}")
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=5) as response:
                if response.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1.0)
    server.stop()
    raise ServerError(f"Label Studio did not answer within {timeout_s:.0f} s", hint=f"see {log}")
