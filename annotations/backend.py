"""A Label Studio ML backend serving the litter model: its boxes appear in Label Studio as a task opens.

It speaks the protocol of Label Studio's ML backends (``GET /health``, ``POST /setup``, ``POST /predict``,
``POST /webhook``), on a small threaded WSGI server bound to 127.0.0.1 by default. Every call but
``/health`` needs HTTP basic authentication with the user ``label-studio`` and the backend's own token
(``<state dir>/backend-token``, mode 0600), which ``annotate init --backend`` hands to Label Studio; the
Label Studio admin token is never needed by the server side.

Predictions are the ``detect`` inference path on the task's photo, as ``annotate prelabel`` makes them:
boxes in Label Studio's percent coordinates, the model version, and a score that is the model's certainty
about the photo (uncertainty sampling serves the least certain photos first). Without ``--model`` the
backend serves ``detect``'s default model and follows it: when the retraining loop promotes a better one,
the next request is answered by it. Webhook calls about annotations feed the loop
(:mod:`plastic_hotspots.annotations.loop`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import io
import json
import logging
import secrets
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import numpy as np
import numpy.typing as npt

from plastic_hotspots.annotations.errors import AnnotationError
from plastic_hotspots.annotations.tasks import LOCAL_FILES_PREFIX, prelabels
from plastic_hotspots.annotations.taxonomy import CLASS_NAMES

if TYPE_CHECKING:
    from plastic_hotspots.annotations.loop import RetrainLoop
    from plastic_hotspots.detector.predictor import YoloDetector
    from plastic_hotspots.detector.settings import DetectorSettings

BACKEND_USER = "label-studio"
TOKEN_FILE = "backend-token"
MAX_BODY = 64 * 1024 * 1024
log = logging.getLogger("plastic_hotspots.backend")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def backend_token(state_dir: Path) -> str:
    """The backend's token, made once (random, 0600 file in ``state_dir``)."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / TOKEN_FILE
    if not path.is_file():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32), encoding="utf-8")
    path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def basic_auth(token: str) -> str:
    """The ``Authorization`` header value Label Studio sends to the backend."""
    return "Basic " + base64.b64encode(f"{BACKEND_USER}:{token}".encode()).decode()


def local_photo(url: str, document_root: Path) -> Path:
    """The file behind a ``/data/local-files/?d=...`` URL, which must resolve inside ``document_root``.

    Raises:
        AnnotationError: The URL is not a local-files URL, or its file lies outside the root or is missing.
    """
    if not url.startswith(LOCAL_FILES_PREFIX):
        raise AnnotationError(f"{url} is not a local file URL", hint="photos pushed with --document-root are")
    relative = urllib.parse.unquote(url[len(LOCAL_FILES_PREFIX) :])
    root = Path(document_root).resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise AnnotationError(
            f"{relative} is not a photo under the document root {root}",
            hint="start the backend with the --document-root the photos were pushed with",
        )
    return path


def read_upright_rgb(data: bytes | Path) -> npt.NDArray[np.uint8]:
    """An image as RGB pixels, turned upright as its EXIF orientation says (as Label Studio shows it)."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as img:
        upright = ImageOps.exif_transpose(img).convert("RGB")
    return np.asarray(upright, dtype=np.uint8)


@dataclass
class PhotoSource:
    """Where the backend reads task photos: the server's document root, else Label Studio over HTTP."""

    document_root: Path | None = None
    label_studio_url: str | None = None
    label_studio_key: str | None = field(default=None, repr=False)

    def read(self, url: str) -> npt.NDArray[np.uint8]:
        """The photo of a task's ``image`` URL.

        Raises:
            AnnotationError: It cannot be found or read.
        """
        if url.startswith(LOCAL_FILES_PREFIX) and self.document_root is not None:
            return read_upright_rgb(local_photo(url, self.document_root))
        if url.startswith("/") and self.label_studio_url:
            url = self.label_studio_url.rstrip("/") + url
        if not url.startswith(("http://", "https://")):
            raise AnnotationError(
                f"cannot read the task photo {url}",
                hint="start the backend with --document-root, "
                "or set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY",
            )
        # The Label Studio key goes to Label Studio only: a task's URL elsewhere is fetched without it.
        ours = bool(self.label_studio_url) and _origin(url) == _origin(str(self.label_studio_url))
        key = self.label_studio_key if ours else None
        headers = {"Authorization": f"Token {key}"} if key else {}
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as response:
            return read_upright_rgb(response.read())


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class ModelService:
    """The served model; without a fixed ``model`` it follows ``detect``'s default (and its promotions)."""

    def __init__(self, model: Path | None, settings: DetectorSettings | None = None) -> None:
        self.model = Path(model) if model else None
        self.settings = settings
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._loaded: tuple[Path, int, int] | None = None
        self._detector: YoloDetector | None = None

    def _path(self) -> Path:
        from plastic_hotspots.detector.yolo import default_model_path

        return self.model or default_model_path()

    def detector(self) -> YoloDetector:
        """The detector of the model in effect now (reloaded when its file changed)."""
        from plastic_hotspots.detector.predictor import YoloDetector

        path = self._path()
        stat = path.stat()
        key = (path, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if self._detector is None or self._loaded != key:
                self._detector = YoloDetector(path, self.settings)
                self._loaded = key
                log.info("serving %s (%s)", path, self._detector.model_version)
            return self._detector

    @property
    def version(self) -> str:
        """The model version predictions carry."""
        return self.detector().model_version

    def predict(self, task: Mapping[str, Any], photos: PhotoSource) -> dict[str, Any]:
        """Label Studio's prediction for a task: regions, certainty score and model version."""
        detector = self.detector()
        data = task.get("data") or {}
        rgb = photos.read(str(data.get("image") or ""))
        height, width = rgb.shape[:2]
        key = str(data.get("key") or task.get("id"))
        with self._run_lock:  # one inference at a time: requests arrive on several threads
            found = detector.predict([rgb])[0]
        rows = [
            {"key": key, "class_name": d.class_name, "score": d.score,
             "x1": d.box.x1, "y1": d.box.y1, "x2": d.box.x2, "y2": d.box.y2}
            for d in found
        ]  # fmt: skip
        label = prelabels(rows, {key: (width, height)}, CLASS_NAMES)[0]
        return {"result": label.result, "score": label.score, "model_version": detector.model_version}


class _App:
    """The WSGI application."""

    def __init__(
        self, service: ModelService, photos: PhotoSource, token: str, loop: RetrainLoop | None
    ) -> None:
        self.service, self.photos, self.loop = service, photos, loop
        self._expected = basic_auth(token)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/").rstrip("/") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            status, payload = self._answer(environ, method, path)
        except (ValueError, binascii.Error) as exc:
            status, payload = 400, {"error": f"the request is not JSON: {exc}"}
        except Exception as exc:  # one bad request must not stop the server; it is logged
            log.exception("%s %s failed", method, path)
            status, payload = 500, {"error": f"{type(exc).__name__}: {exc}"}
        return self._json(start_response, status, payload)

    def _answer(self, environ: Mapping[str, Any], method: str, path: str) -> tuple[int, Any]:
        if path == "/health":
            return 200, {"status": "UP", "model_class": "plastic-hotspots"}
        if not hmac.compare_digest(environ.get("HTTP_AUTHORIZATION", ""), self._expected):
            return 401, {"error": "the backend's token is needed"}
        routes: dict[tuple[str, str], Callable[[], Any]] = {
            ("GET", "/status"): lambda: self.loop.status() if self.loop else {},
            ("POST", "/setup"): lambda: {"model_version": self.service.version},
            ("POST", "/predict"): lambda: self._predict(self._body(environ)),
            ("POST", "/webhook"): lambda: self._webhook(self._body(environ)),
        }
        route = routes.get((method, path))
        if route is None:
            return 404, {"error": f"{method} {path} is not served"}
        return 200, route()

    def _webhook(self, body: Mapping[str, Any]) -> dict[str, str]:
        if self.loop is not None:
            self.loop.on_event(body)
        return {"status": "ok"}

    def _predict(self, body: Mapping[str, Any]) -> dict[str, Any]:
        results = []
        version = self.service.version
        for task in body.get("tasks") or []:
            try:
                results.append(self.service.predict(task, self.photos))
            except Exception as exc:  # a photo that cannot be read gets no boxes, and the log says why
                log.warning("task %s: no prediction (%s)", task.get("id"), exc)
                results.append({"result": [], "score": 0.0, "model_version": version})
        return {"results": results, "model_version": version}

    @staticmethod
    def _body(environ: Mapping[str, Any]) -> dict[str, Any]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY:
            raise ValueError(f"request of {length} bytes is larger than {MAX_BODY}")
        raw = environ["wsgi.input"].read(length) if length else b""
        body = json.loads(raw or b"{}")
        if not isinstance(body, dict):
            raise ValueError("the request is not a JSON object")
        return body

    @staticmethod
    def _json(start_response: StartResponse, status: int, payload: Any) -> list[bytes]:
        reasons = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
                   500: "Internal Server Error"}  # fmt: skip
        data = json.dumps(payload).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        if status == 401:
            headers.append(("WWW-Authenticate", 'Basic realm="plastic-hotspots backend"'))
        start_response(f"{status} {reasons[status]}", headers)
        return [data]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


@dataclass
class RunningBackend:
    """A backend serving in a thread (for tests and for the command, which waits on it)."""

    url: str
    server: WSGIServer
    thread: threading.Thread

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def start_backend(
    service: ModelService,
    photos: PhotoSource,
    token: str,
    *,
    host: str = "127.0.0.1",
    port: int = 9090,
    loop: RetrainLoop | None = None,
) -> RunningBackend:
    """Serve the backend on ``host:port`` (0: a free port) in a background thread.

    Raises:
        AnnotationError: The port cannot be bound.
    """
    try:
        server = make_server(host, port, _App(service, photos, token, loop), _Server, _QuietHandler)
    except OSError as exc:
        raise AnnotationError(
            f"cannot serve the backend on {host}:{port} ({exc.strerror})",
            hint="choose another --port (0 picks a free one) or stop what uses it",
        ) from exc
    thread = threading.Thread(target=server.serve_forever, name="ml-backend", daemon=True)
    thread.start()
    return RunningBackend(f"http://{host}:{server.server_port}", server, thread)
