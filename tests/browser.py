"""Open a local HTML page in headless Chromium, with no network, and report what went wrong in it.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: commands go in
on file descriptor 3, answers and events come out on 4, each a JSON message ended by a NUL byte), so
only the standard library is needed. Besides the page's console errors and uncaught exceptions, every
request for something that is not a ``file:``/``data:``/``blob:``/``about:`` URL is reported as an
error: an offline page must not ask the network for anything. Host names do not resolve in the
browser (``--host-resolver-rules``), so such a request fails fast even on a machine that is online.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--remote-debugging-pipe",
)
# Chromium expects the pipe on file descriptors 3 and 4: a small Python trampoline puts the two ends
# there (moving them out of the way first, in case they already are 3 or 4) and execs Chromium.
_TRAMPOLINE = """
import fcntl, os, sys
read_end, write_end = (fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3])
os.dup2(read_end, 3)
os.dup2(write_end, 4)
os.execv(sys.argv[3], sys.argv[3:])
"""
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "devtools:")


def chromium_path() -> str | None:
    """The Chromium executable: ``$CHROMIUM`` if set, else the first of :data:`CANDIDATES` on PATH."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else shutil.which(explicit)
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_available() -> bool:
    """Whether a Chromium executable can be found."""
    return chromium_path() is not None


class _Pipe:
    """The DevTools protocol over Chromium's pipe: send commands, collect events."""

    def __init__(self, write_fd: int, read_fd: int, deadline: float) -> None:
        self.write_fd = write_fd
        self.read_fd = read_fd
        self.deadline = deadline
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> int:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            written = os.write(self.write_fd, data)
            data = data[written:]
        return self.next_id

    def _read_message(self) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self.read_fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe (it crashed or exited)")
            self.buffer += chunk
        raw, _, self.buffer = self.buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    def _keep(self, message: dict[str, Any]) -> None:
        self.events.append(message)
        if message["method"] == "Page.javascriptDialogOpening":  # alert() etc. would block the page
            self.send("Page.handleJavaScriptDialog", {"accept": False}, message.get("sessionId"))

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        """Send a command and wait for its answer; events that arrive meanwhile are kept."""
        wanted = self.send(method, params, session)
        while True:
            message = self._read_message()
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self._keep(message)

    def wait_event(self, method: str, timeout: float) -> bool:
        """Wait until an event named ``method`` has arrived (or ``timeout`` seconds pass)."""
        end = min(self.deadline, time.monotonic() + timeout)
        if any(e["method"] == method for e in self.events):
            return True
        saved, self.deadline = self.deadline, end
        try:
            while True:
                message = self._read_message()
                if "method" in message:
                    self._keep(message)
                    if message["method"] == method:
                        return True
        except TimeoutError:
            return False
        finally:
            self.deadline = saved


def _errors_from(events: list[dict[str, Any]]) -> list[str]:
    errors: list[str] = []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            description = details.get("exception", {}).get("description") or details.get("text", "")
            errors.append(f"Uncaught {description} (line {details.get('lineNumber')})")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in {"error", "assert"}:
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            errors.append(f"console.{params['type']}: {text}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Page.javascriptDialogOpening":
            errors.append(f"dialog opened ({params.get('type')}): {params.get('message')}")
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if not url.startswith(LOCAL_SCHEMES):
                errors.append(f"network request from an offline page: {url}")
    return errors


def run_headless(
    html_path: Path,
    screenshot_png: Path,
    *,
    width: int = 1280,
    height: int = 860,
    script: str | None = None,
    settle_s: float = 1.0,
    timeout_s: float = 45.0,
) -> tuple[list[str], str]:
    """Load a page in headless Chromium, screenshot it and return its errors and its DOM.

    Args:
        html_path: The page, a local file.
        screenshot_png: Where to write a PNG screenshot of the viewport.
        width: Viewport width in pixels.
        height: Viewport height in pixels.
        script: JavaScript to run after the page has loaded (and settled), before the DOM is read.
        settle_s: Seconds to wait after the load event, for rendering to finish.
        timeout_s: Give up after this many seconds.

    Returns:
        The console errors, uncaught exceptions and network requests (one line each), and the
        page's DOM as HTML.
    """
    exe = chromium_path()
    if exe is None:
        raise FileNotFoundError("Chromium not found; install it with `apt-get install chromium`")
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [
            exe,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        proc = subprocess.Popen(
            [sys.executable, "-c", _TRAMPOLINE, str(to_chrome_r), str(from_chrome_w), *command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(to_chrome_r, from_chrome_w),
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        pipe = _Pipe(to_chrome_w, from_chrome_r, time.monotonic() + timeout_s)
        try:
            target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Runtime", "Log", "Network", "Page"):
                pipe.call(f"{domain}.enable", session=session)
            pipe.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                session=session,
            )
            pipe.events.clear()
            pipe.call("Page.navigate", {"url": Path(html_path).resolve().as_uri()}, session=session)
            if not pipe.wait_event("Page.loadEventFired", timeout_s):
                raise TimeoutError(f"{html_path} did not finish loading in {timeout_s} s")
            pipe.wait_event("Never.happens", settle_s)  # let Leaflet lay out and draw
            if script:
                result = pipe.call(
                    "Runtime.evaluate", {"expression": script, "awaitPromise": True}, session=session
                )
                if "exceptionDetails" in result:  # the script itself failed: report it like the page's
                    pipe.events.append(
                        {
                            "method": "Runtime.exceptionThrown",
                            "params": {"exceptionDetails": result["exceptionDetails"]},
                        }
                    )
                pipe.wait_event("Never.happens", 0.3)
            dom = pipe.call(
                "Runtime.evaluate",
                {"expression": "document.documentElement.outerHTML", "returnByValue": True},
                session=session,
            )["result"]["value"]
            shot = pipe.call("Page.captureScreenshot", {"format": "png"}, session=session)
            screenshot_png.parent.mkdir(parents=True, exist_ok=True)
            screenshot_png.write_bytes(base64.b64decode(shot["data"]))
            errors = _errors_from(pipe.events)
            with contextlib.suppress(RuntimeError, TimeoutError, OSError):
                pipe.call("Browser.close")
        finally:
            os.close(to_chrome_w)
            os.close(from_chrome_r)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
    return errors, str(dom)


def require_chromium() -> None:
    """Skip without Chromium, except under CI (``CI=true``), where its absence is a failure."""
    import pytest
    from conftest import in_ci

    if not chromium_available():
        if in_ci():
            pytest.fail("CI=true but Chromium is missing: install it with `apt-get install chromium`")
        pytest.skip("Chromium not installed (apt-get install chromium)")


def print_to_pdf(html_path: Path, pdf_path: Path, *, timeout_s: float = 60.0) -> Path:
    """Print a local page to PDF with headless Chromium, as a browser's "Save as PDF" would.

    The page's print CSS (``@page``, ``@media print``) applies; no header or footer is added. Host
    names do not resolve (as in :func:`run_headless`), so the page cannot fetch anything.

    Args:
        html_path: The page, a local file.
        pdf_path: Where to write the PDF.
        timeout_s: Give up after this many seconds.

    Returns:
        ``pdf_path``.
    """
    exe = chromium_path()
    if exe is None:
        raise FileNotFoundError("Chromium not found; install it with `apt-get install chromium`")
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    flags = [f for f in FLAGS if f != "--remote-debugging-pipe"]
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        subprocess.run(
            [
                exe,
                *flags,
                f"--user-data-dir={profile}",
                "--no-pdf-header-footer",
                f"--print-to-pdf={pdf_path.resolve()}",
                Path(html_path).resolve().as_uri(),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout_s,
            check=True,
        )
    if not pdf_path.is_file():
        raise RuntimeError(f"Chromium printed no PDF of {html_path}")
    return pdf_path


def pdf_page_count(pdf: bytes) -> int:
    """The number of pages of a PDF: its ``/Type /Page`` objects (not ``/Pages``)."""
    return len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", pdf))


LAYER_LABELS_SCRIPT = """(() => {
  const labels = [...document.querySelectorAll(".leaflet-control-layers label span")];
  const pre = document.createElement("pre");
  pre.id = "labels";
  pre.textContent = JSON.stringify(labels.map(s => s.textContent.trim()));
  document.body.appendChild(pre);
})()"""


def layer_control_labels(html_path: Path, screenshot_png: Path) -> tuple[list[str], list[str]]:
    """Open a map in headless Chromium: its errors (and network requests) and its layer control's labels."""
    import html
    import json
    import re

    errors, dom = run_headless(html_path, screenshot_png, script=LAYER_LABELS_SCRIPT)
    found = re.search(r'<pre id="labels">(.*?)</pre>', dom, re.DOTALL)
    if found is None:
        raise AssertionError("the page has no layer control to read")
    return errors, list(json.loads(html.unescape(found.group(1))))
