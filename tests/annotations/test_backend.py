"""The ML backend and the closed loop, against a real Label Studio on 127.0.0.1 and the real model.

A task opened through Label Studio's API gets the backend's boxes; volunteers' annotations reach the backend
as webhooks; past the threshold a retraining job pulls, builds a dataset, fine-tunes for one epoch, judges
the candidate against the model in use on the fixed held-out split, promotes it by the registry's rule, and
the unlabelled tasks get predictions of the new version.
"""

from __future__ import annotations

import base64
import json
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from plastic_hotspots.annotations.backend import (
    BACKEND_USER,
    ModelService,
    PhotoSource,
    backend_token,
    start_backend,
)
from plastic_hotspots.annotations.convert import ls_region
from plastic_hotspots.annotations.labelstudio import LabelStudioClient
from plastic_hotspots.annotations.loop import RetrainLoop, RetrainSettings, loop_status
from plastic_hotspots.annotations.workflow import connect_backend, init, project_id, push
from plastic_hotspots.cli import app
from plastic_hotspots.records import BBox
from plastic_hotspots.training.baseline import TRASH_COLLECTION_CLASSES

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

N_PHOTOS, N_LABELLED = 10, 8


def _call(url: str, body: object | None = None, token: str | None = None) -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{BACKEND_USER}:{token}".encode()).decode()
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(
        url, data=data, headers=headers, method="GET" if data is None else "POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _litter_photos(shared: Path, out: Path) -> dict[str, list[tuple[str, BBox]]]:
    """Ten litter photos, each in its own folder (its own split group), with their boxes in the taxonomy."""
    from PIL import Image

    folder = shared / "trash_collection_self"
    names = yaml.safe_load((folder / "data.yaml").read_text())["names"]
    names = names if isinstance(names, dict) else dict(enumerate(names))
    truth: dict[str, list[tuple[str, BBox]]] = {}
    for image in sorted((folder / "images").rglob("*.jpg")):
        label = folder / "labels" / image.relative_to(folder / "images").with_suffix(".txt")
        rows = (
            [line.split() for line in label.read_text().splitlines() if line.strip()]
            if label.is_file()
            else []
        )
        boxes = []
        with Image.open(image) as img:
            w, h = img.size
        for row in rows:
            cls = TRASH_COLLECTION_CLASSES.get(str(names[int(row[0])]))
            cx, cy, bw, bh = (float(v) for v in row[1:5])
            if cls:
                boxes.append(
                    (cls, BBox((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h))
                )
        if not boxes:
            continue
        key = f"s{len(truth):02d}/{image.name}"
        (out / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image, out / key)
        truth[key] = boxes
        if len(truth) == N_PHOTOS:
            break
    return truth


def _blind_model(path: Path) -> Path:
    """The shipped model with every class score pushed to nothing: it finds no litter at all."""
    import torch

    from plastic_hotspots.detector.yolo import shipped_model_path

    ckpt = torch.load(shipped_model_path(), map_location="cpu", weights_only=False)
    net = ckpt.get("ema") or ckpt["model"]
    for branch in net.model[-1].cv3:
        branch[-1].bias.data.fill_(-60.0)
    ckpt["model"], ckpt["ema"] = net, None
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)
    return path


def test_backend_predicts_in_label_studio_and_the_loop_retrains(
    label_studio: tuple[str, str, Path], shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plastic_hotspots.detector.yolo import BASELINE_NAME, shipped_model_path

    url, key, document_root = label_studio
    cache = tmp_path / "cache"
    monkeypatch.setenv("PLASTIC_HOTSPOTS_CACHE", str(cache))
    monkeypatch.setenv("LABEL_STUDIO_URL", url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", key)
    monkeypatch.delenv("PLASTIC_HOTSPOTS_MODEL", raising=False)
    _blind_model(cache / "models" / BASELINE_NAME)  # the model in use: a blind one the loop must beat
    photos = document_root / "live-loop"
    truth = _litter_photos(shared_data, photos)
    assert len(truth) == N_PHOTOS

    client = LabelStudioClient(url, key)
    title = "live loop"
    init(client, title, overlap=1)
    push(client, title, photos, document_root=document_root)
    pid = project_id(client, title)
    ids = client.task_ids_and_keys(pid)
    assert sorted(ids) == sorted(truth)

    state = tmp_path / "backend-state"
    token = backend_token(state)
    assert (state / "backend-token").stat().st_mode & 0o777 == 0o600
    settings = RetrainSettings(
        threshold=N_LABELLED, epochs=1, imgsz=320, batch=4, start=str(shipped_model_path())
    )
    loop = RetrainLoop(state, title, settings, document_root)
    service = ModelService(None)
    blind_version = service.version
    running = start_backend(service, PhotoSource(document_root), token, port=0, loop=loop)
    try:
        # The protocol: health is open, everything else needs the backend's token.
        assert _call(f"{running.url}/health")[0] == 200
        assert _call(f"{running.url}/setup", {})[0] == 401
        assert _call(f"{running.url}/setup", {}, token="wrong")[0] == 401
        status, setup = _call(f"{running.url}/setup", {}, token=token)
        assert status == 200
        assert setup["model_version"] == blind_version
        assert _call(f"{running.url}/predict", b"not json", token=token)[0] == 400

        assert connect_backend(client, pid, running.url, state / "backend-token") == "connected"

        # A volunteer opens a task: Label Studio asks the backend, the prediction carries its version.
        first = ids[sorted(truth)[0]]
        opened = client.task(first)
        versions = [p["model_version"] for p in opened["predictions"]]
        assert versions == [blind_version]
        assert opened["predictions"][0]["result"] == []  # the blind model sees nothing
        assert opened["predictions"][0]["score"] == pytest.approx(0.5)  # ... and sits mid-queue

        # Volunteers label eight photos; each webhook counts a consensus-ready photo (overlap 1).
        labelled = sorted(truth)[:N_LABELLED]
        for n, task_key in enumerate(labelled):
            from PIL import Image

            with Image.open(photos / task_key) as img:
                w, h = img.size
            regions = [ls_region(box, cls, w, h, f"r{i}") for i, (cls, box) in enumerate(truth[task_key])]
            client.annotate(ids[task_key], regions)
            if n < N_LABELLED - 1:
                assert loop_status(state)["ready_since_last_model"] == n + 1
        now = loop_status(state)
        assert now["job"] is not None, now
        assert now["ready_since_last_model"] == 0

        deadline = time.monotonic() + 900
        while loop_status(state)["job_running"] and time.monotonic() < deadline:
            time.sleep(2)
        done = loop_status(state)
        last = done["last"]
        log = Path(done["job"]["folder"]) / "job.log"
        assert last is not None, log.read_text()[-3000:]
        assert "error" not in last, log.read_text()[-3000:]
        assert last["photos"]["train"] >= 1
        assert last["heldout_photos"] >= 1
        # The registry's rule: promoted exactly when the candidate beats the model in use on held-out data.
        assert last["current_score"] == 0.0  # the blind model finds nothing
        assert last["promoted"] == (last["candidate_score"] > last["current_score"])
        assert last["promoted"], last
        new_version = last["model_version"]
        assert new_version != blind_version
        assert last["refreshed"] == N_PHOTOS - N_LABELLED

        # The backend now serves the promoted model, and the unlabelled tasks carry its predictions.
        assert _call(f"{running.url}/setup", {}, token=token)[1]["model_version"] == new_version
        boxes = 0
        for task_key in sorted(truth)[N_LABELLED:]:
            predictions = client.task(ids[task_key])["predictions"]
            assert new_version in {p["model_version"] for p in predictions}
            boxes += sum(len(p["result"]) for p in predictions if p["model_version"] == new_version)
        assert boxes > 0  # the new model sees the litter the blind one missed
        print(f"loop: {json.dumps({k: last[k] for k in ('photos', 'candidate_score', 'current_score')})}")
        held = json.loads((state / "heldout.json").read_text())
        assert held
        assert set(held) <= set(labelled)

        result = CliRunner().invoke(app, ["annotate", "status", "--state-dir", str(state)])
        assert result.exit_code == 0, result.output
        assert ": promoted" in result.output
        assert "0 consensus-ready photos" in result.output
    finally:
        running.stop()
