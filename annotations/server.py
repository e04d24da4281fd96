"""A local Label Studio server for a field team or a test: loopback only, sqlite, nothing phoned home.

Label Studio lives in its own virtual environment (its pins fight the ML stack); this module starts its
``label-studio`` executable as a subprocess with analytics and version checks off and a fixed secret key.
Its secrets stay in the data folder, readable by its owner only (folder 0700, files 0600): the admin
account's API key (``api-key``) and its separate web password (``admin-password``), never printed, and
the database, which holds the key too.

The server runs in its own process group, so stopping it stops every process it started.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from plastic_hotspots.annotations.errors import ServerError

EXECUTABLE_ENV = "PLASTIC_HOTSPOTS_LABEL_STUDIO"
ADMIN_EMAIL = "admin@plastic-hotspots.local"
API_KEY_FILE = "api-key"
ADMIN_PASSWORD_FILE = "admin-password"
SECRET_KEY_FILE = "secret-key"
DATABASE_FILE = "label_studio.sqlite3"
LOG_FILE = "server.log"
# Files of the data folder only their owner may read: the database holds the admin key in clear.
PRIVATE_FILES = (
    API_KEY_FILE, ADMIN_PASSWORD_FILE, SECRET_KEY_FILE, LOG_FILE,
    DATABASE_FILE, DATABASE_FILE + "-wal", DATABASE_FILE + "-shm", DATABASE_FILE + "-journal",
)  # fmt: skip
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


def check_port_free(port: int) -> None:
    """Make sure nothing listens on ``127.0.0.1:port`` (Label Studio would quietly move to another port).

    Raises:
        ServerError: The port is taken or cannot be used.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed server's leftovers are fine
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            taken = exc.errno == errno.EADDRINUSE
            raise ServerError(
                f"port {port} on 127.0.0.1 is "
                + ("already in use by another program" if taken else f"not usable ({exc.strerror})"),
                hint="stop the other server, or pass another --port (--port 0 picks a free one)",
            ) from exc


@dataclass
class LocalServer:
    """A running Label Studio on loopback."""

    url: str
    api_key: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log: Path
    document_root: Path | None = None

    @property
    def admin_password_file(self) -> Path:
        """The file holding the admin account's web password (mode 0600)."""
        return self.data_dir / ADMIN_PASSWORD_FILE

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the server and every process it started (SIGTERM to its group, then SIGKILL)."""
        _stop_group(self.process, timeout_s)


def _stop_group(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    group = process.pid  # the child leads its own session and process group
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout_s)
    # Whatever is left of the group (the leader, or a worker that outlived it) is killed.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)
    process.wait()


def _write_private(path: Path, text: str) -> None:
    """Write a new file only its owner can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def _private_value(path: Path, make: str) -> tuple[str, bool]:
    """The value kept in ``path``, written as ``make`` when missing; ``(value, created)``."""
    if path.is_file():
        return path.read_text(encoding="utf-8").strip(), False
    _write_private(path, make)
    return make, True


def secure_data_dir(data_dir: Path) -> None:
    """Make the data folder 0700 and its secrets 0600 (they may come from an older, laxer version)."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data_dir.chmod(0o700)
    for name in PRIVATE_FILES:
        path = data_dir / name
        if path.exists() and not path.is_symlink():
            path.chmod(0o600)


def child_env(data_dir: Path, document_root: Path | None = None) -> dict[str, str]:
    """The environment Label Studio runs in: this data folder, analytics off, no open sign-up."""
    env = {
        **os.environ,
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "COLLECT_ANALYTICS": "false",
        "LATEST_VERSION_CHECK": "false",
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "SECRET_KEY": _private_value(data_dir / SECRET_KEY_FILE, secrets.token_urlsafe(40))[0],
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
    return env


def set_password(
    data_dir: Path, email: str, password: str, *, executable: Path | None = None, timeout_s: float = 300.0
) -> None:
    """Set a Label Studio account's web password in the database under ``data_dir``.

    Runs ``label-studio reset_password`` (the community edition's only way to set a password) with the
    password on its standard input, never on a command line other users could list.

    Raises:
        ServerError: Label Studio is not installed, or it did not change the password.
    """
    exe = find_executable(executable)
    data_dir = Path(data_dir).resolve()
    if not (data_dir / DATABASE_FILE).is_file():
        raise ServerError(
            f"no Label Studio database in {data_dir}",
            hint="pass the --data-dir that `annotate serve` uses",
        )
    proc = subprocess.run(
        [str(exe), "reset_password", "--username", email],
        env=child_env(data_dir),
        input=(password + "\n").encode(),
        capture_output=True,
        cwd=data_dir,
        timeout=timeout_s,
        check=False,
        start_new_session=True,  # no terminal: the password is read from standard input
        umask=0o077,
    )
    said = (proc.stdout + proc.stderr).decode(errors="replace")
    if "Password successfully changed" not in said and "same as current" not in said:
        last = said.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        raise ServerError(
            f"Label Studio did not set the password of {email}: {last[0]}",
            hint=f"check that {email} has an account and that {data_dir} is the server's --data-dir",
        )


def _is_ours(url: str, key: str) -> bool:
    """Whether the server at ``url`` accepts ``key`` as the admin's (it is the one we started)."""
    request = urllib.request.Request(
        f"{url}/api/current-user/whoami", headers={"Authorization": f"Token {key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return bool(json.loads(response.read()).get("email") == ADMIN_EMAIL)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def start_local_server(
    data_dir: Path,
    *,
    port: int | None = None,
    document_root: Path | None = None,
    executable: Path | None = None,
    timeout_s: float = 300.0,
    cancel: Callable[[], bool] | None = None,
) -> LocalServer:
    """Start Label Studio on ``127.0.0.1`` with its data in ``data_dir`` and wait until it answers.

    Args:
        data_dir: Database, uploads, API key, admin password and log (created 0700; reused on a restart).
        port: TCP port (default: a free one); it must be free.
        document_root: Folder whose files tasks may reference as ``/data/local-files/?d=...``.
        executable: The ``label-studio`` executable (default: :func:`find_executable`).
        timeout_s: How long the first start (database migrations) may take.
        cancel: True when the start is to be given up (a signal arrived): Label Studio is stopped and
            ``KeyboardInterrupt`` raised. A signal handler that records the signal for it, instead of
            raising, can never leave a started Label Studio without its stop.

    Raises:
        ServerError: It is not installed, the port is taken, it exits, another server answers at the
            port, or it does not answer in time (the log is named).
    """
    exe = find_executable(executable)
    data_dir = Path(data_dir).resolve()
    if port:
        check_port_free(port)  # before anything is made
    else:
        port = free_port()
    had_database = (data_dir / DATABASE_FILE).is_file()
    secure_data_dir(data_dir)
    key = _private_value(data_dir / API_KEY_FILE, secrets.token_hex(20))[0]
    password, new_password = _private_value(data_dir / ADMIN_PASSWORD_FILE, secrets.token_urlsafe(24))
    if had_database and new_password:
        # A data folder from an older version, whose admin password was the API key: replace it.
        set_password(data_dir, ADMIN_EMAIL, password, executable=exe, timeout_s=timeout_s)
    env = child_env(data_dir, document_root)
    env |= {
        "LABEL_STUDIO_USERNAME": ADMIN_EMAIL,
        "LABEL_STUDIO_PASSWORD": password,
        "LABEL_STUDIO_USER_TOKEN": key,
    }
    log = data_dir / LOG_FILE
    if cancel is not None and cancel():
        raise KeyboardInterrupt
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as out:
        process = subprocess.Popen(
            [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=data_dir,
            start_new_session=True,  # its own process group: stopped as a whole, never orphaned
            umask=0o077,  # the database and everything else it writes: owner only
        )
    root = Path(document_root).resolve() if document_root else None
    server = LocalServer(f"http://127.0.0.1:{port}", key, data_dir, process, log, root)
    try:
        _wait_until_up(server, port, timeout_s, cancel)
        secure_data_dir(data_dir)  # files it made before the umask applied (none expected)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_up(
    server: LocalServer, port: int, timeout_s: float, cancel: Callable[[], bool] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    strangers = 0  # answers at the port that refuse our key
    while time.monotonic() < deadline:
        if cancel is not None and cancel():
            raise KeyboardInterrupt
        if server.process.poll() is not None:
            raise ServerError(
                f"Label Studio exited with code {server.process.returncode}", hint=f"see {server.log}"
            )
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=5) as response:
                up = response.status == 200
        except (urllib.error.URLError, OSError):
            up = False
        if up:
            if _is_ours(server.url, server.api_key):
                return
            strangers += 1
            if strangers >= 3:
                raise ServerError(
                    f"another server answers on port {port}, not the Label Studio started here",
                    hint="stop the other server, or pass another --port (--port 0 picks a free one)",
                )
        time.sleep(1.0)
    raise ServerError(f"Label Studio did not answer within {timeout_s:.0f} s", hint=f"see {server.log}")
