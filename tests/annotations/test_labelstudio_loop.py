"""The labelling loop against a real Label Studio: init, push, prelabel, volunteers annotate, pull."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from plastic_hotspots.annotations.errors import AnnotationError, ServerError
from plastic_hotspots.annotations.labelstudio import LabelStudioClient
from plastic_hotspots.annotations.taxonomy import CLASS_NAMES
from plastic_hotspots.annotations.workflow import init, prelabel, pull, push, send_review

W, H = 200, 150
# True litter per photo: (label, x1, y1, x2, y2) in pixels.
TRUTH = {
    f"day1/p{i:02d}.jpg": [
        ("bottle", 20 + 5 * i, 30, 60 + 5 * i, 90),
        ("bag_film", 120, 40 + i, 180, 100 + i),
    ]
    for i in range(6)
} | {f"day2/q{i:02d}.jpg": [("pile", 40, 20, 160, 130)] for i in range(4)}


def _gps(value: float) -> tuple[float, float, float]:
    units = round(abs(value) * 3600 * 100)
    d, rest = divmod(units, 360000)
    m, s = divmod(rest, 6000)
    return float(d), float(m), s / 100


def make_photos(folder: Path) -> None:
    rng = np.random.default_rng(0)
    for n, key in enumerate(sorted(TRUTH)):
        path = folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        exif = Image.Exif()
        gps = exif.get_ifd(0x8825)
        gps[1], gps[2] = "N", _gps(20.27 + n * 1e-4)
        gps[3], gps[4] = "E", _gps(100.08 + n * 1e-4)
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(path, exif=exif)


def region(
    label: str, box: tuple[float, float, float, float], rid: str, **extra: object
) -> dict[str, object]:
    x1, y1, x2, y2 = box
    out: dict[str, object] = {
        "id": rid, "type": "rectanglelabels", "from_name": "label", "to_name": "image",
        "original_width": W, "original_height": H,
        "value": {"x": 100 * x1 / W, "y": 100 * y1 / H, "width": 100 * (x2 - x1) / W,
                  "height": 100 * (y2 - y1) / H, "rotation": 0, "rectanglelabels": [label]},
    }  # fmt: skip
    out.update(extra)
    return out


@pytest.fixture(scope="module")
def client(label_studio: tuple[str, str, Path]) -> LabelStudioClient:
    url, key, _ = label_studio
    return LabelStudioClient(url, key)


def test_bad_key_and_no_server_say_how_to_fix(label_studio: tuple[str, str, Path]) -> None:
    url, _, _ = label_studio
    with pytest.raises(ServerError, match="refused the key") as info:
        LabelStudioClient(url, "0" * 40)
    assert "LABEL_STUDIO_API_KEY" in info.value.hint
    assert "0" * 40 not in str(info.value)  # the key is never echoed
    with pytest.raises(ServerError, match="cannot reach"):
        LabelStudioClient("http://127.0.0.1:9", "x")


def test_the_loop(client: LabelStudioClient, label_studio: tuple[str, str, Path], tmp_path: Path) -> None:
    url, key, photos_root = label_studio
    photos = photos_root / "survey"
    make_photos(photos)

    pid, created = init(client, "Chiang Rai street litter", overlap=5)
    assert created
    assert init(client, "Chiang Rai street litter", overlap=5) == (pid, False)  # idempotent: updated

    first = push(client, "Chiang Rai street litter", photos, document_root=photos_root)
    assert (first.found, first.added, first.already_there, first.without_position) == (10, 10, 0, 0)
    again = push(client, "Chiang Rai street litter", photos, document_root=photos_root)
    assert (again.added, again.already_there) == (0, 10)
    ids = client.task_ids_and_keys(pid)
    assert sorted(ids) == sorted(TRUTH)

    # The photo is served to the labelling page through Local Files storage.
    task = json.loads(_get(f"{url}/api/tasks/{ids['day1/p00.jpg']}/", key))
    assert task["data"]["lat"] == pytest.approx(20.27, abs=1e-5)
    assert task["data"]["width"] == W
    image = _get(url + task["data"]["image"], key, raw=True)
    assert image[:2] == b"\xff\xd8"  # a JPEG

    # Pre-labels from a detect run: p03 is the one the model is least sure about.
    rows = []
    for k in sorted(TRUTH):
        for label, *box in TRUTH[k]:
            score = 0.52 if k == "day1/p03.jpg" else 0.97
            rows.append({"image": str(photos / k), "class_name": label, "score": score,
                         "x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3]})  # fmt: skip
    frame = pd.DataFrame(rows)
    dets = gpd.GeoDataFrame(
        frame, geometry=gpd.points_from_xy([100.0] * len(frame), [20.0] * len(frame)), crs=4326
    )
    dets.to_parquet(tmp_path / "detections.parquet")
    assert prelabel(client, "Chiang Rai street litter", tmp_path / "detections.parquet", photos) == 10
    nxt = json.loads(_get(f"{url}/api/projects/{pid}/next/", key))
    assert nxt["data"]["key"] == "day1/p03.jpg"  # uncertainty sampling: least certain first

    # Five volunteers label through the API; one skips a photo, one draws a bad box and an unknown label.
    rng = np.random.default_rng(1)
    volunteers = [client.ensure_user(f"vol{i}@example.org") for i in range(5)]
    for n, (k, tid) in enumerate(sorted(ids.items())):
        for v, user in enumerate(volunteers):
            if v == 4 and n == 0:
                continue  # vol4 never opened this one
            if v == 4 and k == "day2/q01.jpg":
                client.annotate(tid, [], completed_by=user)  # vol4 saw nothing there
                continue
            result = [region(label, tuple(np.array(box) + rng.normal(0, 2, 4)), f"r{v}{j}")
                      for j, (label, *box) in enumerate(TRUTH[k])]  # fmt: skip
            if v == 3 and n == 1:
                result.append(region("bottle", (10, 10, 10, 40), "zero"))  # zero width
                result.append(region("tyre", (10, 10, 40, 40), "unknown"))
            client.annotate(tid, result, completed_by=user)
    skipped = ids["day2/q03.jpg"]
    _post(f"{url}/api/tasks/{skipped}/annotations/", key, {"result": [], "was_cancelled": True,
                                                            "completed_by": volunteers[4]})  # fmt: skip

    export = tmp_path / "export.json"
    assert pull(client, "Chiang Rai street litter", export, page_size=4) == 10
    tasks = json.loads(export.read_text())
    assert sorted(t["data"]["key"] for t in tasks) == sorted(TRUTH)
    by_key = {t["data"]["key"]: t for t in tasks}
    assert len(by_key["day1/p00.jpg"]["annotations"]) == 4
    assert len(by_key["day2/q03.jpg"]["annotations"]) == 6  # five volunteers, one skip
    emails = {a["completed_by"]["email"] for t in tasks for a in t["annotations"]}
    assert emails == {f"vol{i}@example.org" for i in range(5)}
    assert not export.with_name("export.json.parts").exists()

    from plastic_hotspots.annotations.export import read_export

    contents = read_export(tasks, CLASS_NAMES)
    kinds = sorted((p.task, p.kind) for p in contents.problems)
    assert kinds == [
        ("day1/p01.jpg", "unknown_label"),
        ("day1/p01.jpg", "zero_size"),
        ("day2/q03.jpg", "cancelled"),
    ]
    assert len(contents.submissions) == 10 * 5 - 1
    assert len(contents.boxes) == sum(len(v) for v in TRUTH.values()) * 5 - len(TRUTH["day1/p00.jpg"]) - 1

    from plastic_hotspots.annotations.consensus import ConsensusParams, consensus

    result = consensus(contents.boxes, contents.submissions, ConsensusParams(review_support=0.9))
    accepted = [b for b in result.boxes if b.accepted]
    assert len(accepted) == sum(len(v) for v in TRUTH.values())
    for b in accepted:
        (truth,) = [t for t in TRUTH[b.task] if t[0] == b.label]
        assert abs(b.box.x1 - truth[1]) < 8
        assert abs(b.box.y2 - truth[4]) < 8
    assert {b.n_submitters for b in accepted if b.task == "day1/p00.jpg"} == {4}

    assert result.review_tasks == ("day2/q01.jpg",)  # support 4/5 = 0.8 < 0.9
    summary = send_review(client, "Chiang Rai street litter", result, contents)
    assert summary.tasks == 1
    review_pid = client.find_project("Chiang Rai street litter (review)")
    assert review_pid is not None
    assert len(client.task_ids_and_keys(review_pid)) == len(result.review_tasks)

    from plastic_hotspots.annotations.results import run_consensus

    made = run_consensus(export, tmp_path / "consensus", ConsensusParams(review_support=0.9))
    assert made.result.review_tasks == ("day2/q01.jpg",)
    table = pd.read_parquet(tmp_path / "consensus" / "consensus.parquet")
    codes = dict(zip(table["label"], table["litter_list_codes"], strict=True))
    assert codes["bottle"] == "G7;G8;G21"
    assert codes["bag_film"] == "G3;G4;G67"
    assert codes["pile"] == ""  # a heap is not an item of the list
    volunteers = pd.read_csv(tmp_path / "consensus" / "volunteers.csv")
    assert sorted(volunteers["annotator"]) == [f"vol{i}@example.org" for i in range(5)]
    assert (tmp_path / "consensus" / "leaderboard.png").read_bytes()[:4] == b"\x89PNG"
    problems = pd.read_csv(tmp_path / "consensus" / "problems.csv")
    assert sorted(problems["kind"]) == ["cancelled", "unknown_label", "zero_size"]
    cmd = [sys.executable, "-m", "plastic_hotspots.cli", "annotate", "dataset", str(tmp_path / "consensus"),
           "--export", str(export), "--photos", str(photos), "--out", str(tmp_path / "ds")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    labels = list((tmp_path / "ds" / "labels").rglob("*.txt"))
    assert len(labels) == 10
    assert sum(len(p.read_text().splitlines()) for p in labels) == len(accepted)
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["classes"] == list(CLASS_NAMES)


def test_push_needs_a_project_and_a_way_to_serve(client: LabelStudioClient, tmp_path: Path) -> None:
    make_photos(tmp_path / "p")
    with pytest.raises(AnnotationError, match="no Label Studio project titled 'nope'"):
        push(client, "nope", tmp_path / "p", document_root=tmp_path)
    init(client, "serve test", overlap=3)
    with pytest.raises(AnnotationError, match="way to reach Label Studio") as info:
        push(client, "serve test", tmp_path / "p")
    assert "--document-root" in info.value.hint


def _get(url: str, key: str, raw: bool = False) -> bytes:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()  # type: ignore[no-any-return]


def _post(url: str, key: str, body: dict[str, object]) -> bytes:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()  # type: ignore[no-any-return]
