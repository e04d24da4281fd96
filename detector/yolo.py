"""The one adapter around Ultralytics YOLO (and the only module that imports ``ultralytics`` or ``torch``).

It loads ``.pt`` weights, predicts with PyTorch, exports ONNX once per weights file (cached next to
them, keyed by the weights' SHA-256), and builds small untrained models from the YAML files shipped
inside Ultralytics for tests and benchmarks. :func:`apply_offline_settings` runs before Ultralytics (or
OpenVINO) is first imported, so nothing ever tries the network.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from plastic_hotspots.detector.errors import ModelError
from plastic_hotspots.detector.runtime import RawDetections
from plastic_hotspots.records import Detection

BASELINE_NAME = "litter-baseline.pt"
FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")  # fonts Ultralytics downloads for plots when missing


def cache_root() -> Path:
    """The project's cache folder (``PLASTIC_HOTSPOTS_CACHE``, else ``~/.cache/plastic-hotspots``)."""
    root = os.environ.get("PLASTIC_HOTSPOTS_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "plastic-hotspots"


def apply_offline_settings(config_dir: Path | None = None) -> Path:
    """Make Ultralytics and OpenVINO work with no network; call before either is first imported.

    Sets ``YOLO_OFFLINE=1`` (no online checks), ``YOLO_AUTOINSTALL=False`` (no pip installs) and
    ``YOLO_CONFIG_DIR`` (a project-owned folder, unless the user already set one), turns settings
    sync off, and puts a local font (matplotlib's DejaVu Sans) where training plots look for Arial, so
    nothing is downloaded. When OpenVINO is installed, its telemetry is declined too (see
    :func:`opt_out_openvino_telemetry`). Ultralytics reads these once, at import: settings made after it
    was imported do not reach it. Calling again is cheap and changes nothing.

    Args:
        config_dir: Folder for Ultralytics' settings; default ``<cache_root>/ultralytics``.

    Returns:
        The Ultralytics config folder in effect (``$YOLO_CONFIG_DIR``).
    """
    wanted = Path(config_dir) if config_dir is not None else cache_root() / "ultralytics"
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "False"
    os.environ.setdefault("YOLO_CONFIG_DIR", str(wanted))
    os.environ.setdefault("YOLO_VERBOSE", "False")
    config = Path(os.environ["YOLO_CONFIG_DIR"])
    folder = config / "Ultralytics"  # Ultralytics' USER_CONFIG_DIR under YOLO_CONFIG_DIR
    folder.mkdir(parents=True, exist_ok=True)
    _install_fonts(folder)
    _settings_sync_off(folder / "settings.json")
    opt_out_openvino_telemetry()
    return config


def _install_fonts(folder: Path) -> None:
    """Copy DejaVu Sans to the font names Ultralytics would otherwise download."""
    targets = [folder / name for name in FONT_NAMES]
    if all(t.is_file() for t in targets):
        return
    import matplotlib  # only when a font is missing: keeps repeated calls cheap

    dejavu = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    if not dejavu.is_file():  # a matplotlib without its fonts: plots then fall back to its default
        return
    for target in targets:
        if not target.is_file():
            _write_atomic(target, dejavu.read_bytes())


def _settings_sync_off(settings: Path) -> None:
    """Set ``sync`` to false in Ultralytics' settings file, keeping the other settings."""
    current: dict[str, Any] = {}
    if settings.is_file():
        try:
            loaded = json.loads(settings.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            loaded = None  # unreadable: Ultralytics would reset it to defaults anyway
        if isinstance(loaded, dict):
            current = loaded
    if current.get("sync") is not False:
        current["sync"] = False
        _write_atomic(settings, json.dumps(current, indent=2).encode("utf-8"))


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def openvino_consent_file() -> Path:
    """Where OpenVINO's telemetry keeps the user's yes (``1``) or no (``0``)."""
    if sys.platform == "win32":
        return Path(os.path.expandvars("$LOCALAPPDATA")) / "Intel Corporation" / "openvino_telemetry"
    return Path.home() / "intel" / "openvino_telemetry"


def opt_out_openvino_telemetry() -> bool:
    """Decline OpenVINO's telemetry, without sending anything, unless the user already chose.

    ``import openvino`` sends a usage event to Google Analytics unless the consent file says no,
    and OpenVINO's own ``opt_in_out --opt_out`` sends one more event to report the opt-out. Writing
    the consent file directly sends nothing. A recorded choice (``0`` or ``1``) is left as it is.

    Returns:
        Whether telemetry is off after the call (``True`` when OpenVINO is not installed).
    """
    if importlib.util.find_spec("openvino") is None:
        return True
    consent = openvino_consent_file()
    try:
        recorded = consent.read_text(encoding="utf-8").strip() if consent.is_file() else ""
        if recorded in {"0", "1"}:
            return recorded == "0"
        consent.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(consent, b"0")
    except OSError:  # a read-only home: nothing we can record
        return False
    return True


def shipped_model_path() -> Path:
    """The baseline litter model shipped inside the package (see ``detector/models/MODEL_CARD.md``)."""
    return Path(__file__).resolve().parent / "models" / BASELINE_NAME


def default_model_path() -> Path:
    """The litter model used when ``--model`` is not given.

    ``PLASTIC_HOTSPOTS_MODEL`` if set; else a promoted model in the project's cache
    (``models/litter-baseline.pt``); else the baseline shipped with the package.

    Raises:
        ModelError: ``PLASTIC_HOTSPOTS_MODEL`` names a missing file, or no model is there at all.
    """
    env = os.environ.get("PLASTIC_HOTSPOTS_MODEL")
    candidates = [Path(env)] if env else [cache_root() / "models" / BASELINE_NAME, shipped_model_path()]
    for path in candidates:
        if path.is_file():
            return path
    raise ModelError(
        f"no litter model at {candidates[0]}",
        hint="pass --model path/to/weights.pt (a YOLO model trained with `plastic-hotspots train`), "
        "or set PLASTIC_HOTSPOTS_MODEL",
    )


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, hex."""
    from plastic_hotspots.provenance import file_sha256

    return file_sha256(path)


def _ultralytics_yolo() -> Any:
    """Ultralytics' ``YOLO`` class, with Pillow left as it was.

    Importing Ultralytics replaces ``PIL.Image.open`` with a wrapper that, on a file Pillow cannot
    identify, tries to install a HEIF plugin from the network. The project reads images itself and
    reports such files as ``not_an_image``, so Pillow's own ``open`` is put back.
    """
    from PIL import Image
    from ultralytics import YOLO  # type: ignore[attr-defined]

    pillow_open = getattr(sys.modules.get("ultralytics.utils.patches"), "_image_open", None)
    if pillow_open is not None:
        Image.open = pillow_open
    return YOLO


def _load_yolo(weights: Path) -> Any:
    YOLO = _ultralytics_yolo()  # noqa: N806

    try:
        return YOLO(str(weights), task="detect")
    except Exception as exc:  # ultralytics raises many kinds of error for a bad checkpoint
        reason = str(exc).split("Recommended fixes")[0].strip()  # its fixes download models: not here
        raise ModelError(
            f"{weights} is not a YOLO detection checkpoint Ultralytics can load ({reason})",
            hint="pass the .pt file written by training (weights/best.pt)",
        ) from exc


def model_names(weights: Path) -> dict[int, str]:
    """Class names stored in the weights."""
    names = _load_yolo(weights).names
    return {int(k): str(v) for k, v in dict(names).items()}


def model_train_data(weights: Path) -> Path | None:
    """The dataset YAML the checkpoint was trained on (its ``train_args.data``), if it records one."""
    ckpt = getattr(_load_yolo(weights), "ckpt", None)
    args = ckpt.get("train_args") if isinstance(ckpt, dict) else None
    data = args.get("data") if isinstance(args, dict) else None
    return Path(data) if isinstance(data, str) and data.endswith((".yaml", ".yml")) else None


def export_onnx(weights: Path, imgsz: int, sha256: str, cache: Path) -> Path:
    """The ONNX export of ``weights`` at ``imgsz``, made once and reused.

    Exports into a temporary folder beside the cache entry and renames it into place, so an
    interrupted export never leaves a half-written model that a later run would trust.
    """
    target = cache / f"{sha256[:16]}-onnx-{imgsz}" / "model.onnx"
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=cache))
    try:
        copy = tmp / "model.pt"
        shutil.copyfile(weights, copy)
        model = _load_yolo(copy)
        try:
            produced = Path(model.export(format="onnx", imgsz=imgsz, batch=1, dynamic=False, simplify=True))
        except Exception as exc:
            raise ModelError(
                f"exporting {weights} to ONNX failed: {exc}",
                hint="install the export tools: pip install 'plastic-hotspots[detect]' (onnx, onnxslim)",
            ) from exc
        produced.rename(tmp / "model.onnx")
        copy.unlink()
        try:
            tmp.rename(target.parent)
        except OSError:  # another process exported it meanwhile
            if not target.is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


class TorchYolo:
    """Ultralytics' own PyTorch predictor, boxes returned as arrays.

    ``threads`` sets PyTorch's intra-op threads for the whole process (default: left as they are).
    """

    def __init__(
        self, weights: Path, *, imgsz: int, conf: float, iou: float, device: str, threads: int | None = None
    ) -> None:
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.model = _load_yolo(weights)
        self.imgsz, self.conf, self.iou, self.device = imgsz, conf, iou, device
        self.names = {int(k): str(v) for k, v in dict(self.model.names).items()}

    def __call__(self, images: list[npt.NDArray[np.uint8]]) -> list[RawDetections]:
        """Detections per RGB image."""
        import cv2

        # Ultralytics takes numpy images as BGR. cvtColor is ~50x faster than a reversed-channel copy
        # (0.05 ms against 2.6 ms for 640x480), which matters next to a 30 ms inference.
        bgr = [cv2.cvtColor(img, cv2.COLOR_RGB2BGR) for img in images]
        results = self.model.predict(
            bgr, imgsz=self.imgsz, conf=self.conf, iou=self.iou, device=self.device, verbose=False
        )
        out = []
        for res in results:
            boxes = res.boxes
            out.append(
                RawDetections(
                    boxes.xyxy.cpu().numpy().astype(np.float64),
                    boxes.conf.cpu().numpy().astype(np.float64),
                    boxes.cls.cpu().numpy().astype(np.int64),
                )
            )
        return out


class _TrackerInput:
    """Detections as Ultralytics' trackers read them: ``xywh`` (centre), ``conf``, ``cls``, masks."""

    def __init__(
        self, xyxy: npt.NDArray[np.float64], conf: npt.NDArray[np.float64], cls: npt.NDArray[np.float64]
    ):
        self.xyxy, self.conf, self.cls = xyxy, conf, cls
        self.xywh = np.column_stack(
            [(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2, xyxy[:, 2] - xyxy[:, 0],
             xyxy[:, 3] - xyxy[:, 1]]
        )  # fmt: skip

    def __len__(self) -> int:
        return int(self.conf.shape[0])

    def __getitem__(self, keep: Any) -> _TrackerInput:
        return _TrackerInput(self.xyxy[keep], self.conf[keep], self.cls[keep])


class ByteTracker:
    """Ultralytics' ByteTrack (``BYTETracker``, the package's own ``bytetrack.yaml``) over given boxes.

    It is the tracker ``model.track(..., tracker="bytetrack.yaml")`` runs after each prediction, fed
    here with the project detector's boxes instead, so every backend (and a test's fake detector) can be
    tracked. The config is read from the Ultralytics package folder: nothing is downloaded.

    Args:
        config: The tracker config's file name inside ``ultralytics/cfg/trackers``.
        config_dir: Ultralytics' settings folder (see :func:`apply_offline_settings`).

    Raises:
        ModelError: The config is not shipped with the installed Ultralytics, or ``lap`` is missing.
    """

    def __init__(self, config: str = "bytetrack.yaml", *, config_dir: Path | None = None) -> None:
        apply_offline_settings(config_dir)
        if importlib.util.find_spec("lap") is None:  # Ultralytics would try to pip-install it
            raise ModelError(
                "tracking items needs the lap package (Ultralytics' trackers import it)",
                hint="pip install 'plastic-hotspots[detect]' (or pip install 'lap>=0.5.12')",
            )
        _ultralytics_yolo()  # imports Ultralytics and puts Pillow's own open back
        import ultralytics
        from ultralytics.trackers.byte_tracker import BYTETracker
        from ultralytics.utils import YAML, IterableSimpleNamespace

        path = Path(ultralytics.__file__).parent / "cfg" / "trackers" / config
        if not path.is_file():
            raise ModelError(
                f"Ultralytics {ultralytics.__version__} ships no tracker config {config}",
                hint="use bytetrack.yaml, or install the Ultralytics version the project pins",
            )
        args = IterableSimpleNamespace(**YAML.load(path))  # type: ignore[no-untyped-call]
        self._tracker: Any = BYTETracker(args)  # type: ignore[no-untyped-call]
        self._classes: dict[str, int] = {}

    def update(self, detections: list[Detection], image: npt.NDArray[np.uint8]) -> list[int | None]:
        """Feed one frame's detections; the track id of each detection (``None``: not tracked yet).

        Args:
            detections: The frame's detections, in any order.
            image: The frame (not used by ByteTrack, which matches boxes only).

        Returns:
            One id per detection, aligned with ``detections``.
        """
        n = len(detections)
        boxes = [[d.box.x1, d.box.y1, d.box.x2, d.box.y2] for d in detections]
        xyxy = np.array(boxes, np.float64).reshape(n, 4)
        conf = np.array([d.score for d in detections], np.float64)
        classes = [self._classes.setdefault(d.class_name, len(self._classes)) for d in detections]
        cls = np.array(classes, np.float64)
        rows = self._tracker.update(_TrackerInput(xyxy, conf, cls), image)
        ids: list[int | None] = [None] * n
        for row in np.asarray(rows).reshape(-1, 8):  # x1 y1 x2 y2 track_id score cls idx
            ids[int(row[7])] = int(row[4])
        return ids


def build_tiny_model(
    out: Path,
    names: dict[int, str],
    *,
    yaml: str = "yolo11n.yaml",
    seed: int = 0,
    config_dir: Path | None = None,
    spread_scores: bool = False,
) -> Path:
    """An untrained YOLO detection model with ``names`` as classes, saved as ``.pt`` (tests, benchmarks).

    Built from a model YAML shipped inside Ultralytics, so nothing is downloaded. An untrained head
    gives every anchor the same tiny score; ``spread_scores`` re-draws the class-score layers so scores
    vary with the image, which lets tests compare backends box by box.
    """
    apply_offline_settings(config_dir)
    import torch

    YOLO = _ultralytics_yolo()  # noqa: N806
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(seed)
    model: Any = YOLO(yaml, task="detect")
    net: Any = DetectionModel(yaml, nc=len(names), verbose=False)  # type: ignore[no-untyped-call]
    net.names = dict(names)
    model.model = net
    if spread_scores:
        # Untrained batch-norm statistics squash every feature to ~0: gather them from random
        # images, then re-draw the class-score layers so scores spread over (0, 1).
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.momentum = None  # a plain average over the calibration batches
        net.train()
        with torch.no_grad():
            for _ in range(4):
                net(torch.rand(4, 3, 160, 160))
            for branch in net.model[-1].cv3:
                branch[-1].weight.normal_(0.0, 0.02)
                branch[-1].bias.fill_(-2.0)
        net.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    return out


def train_yolo(
    data_yaml: Path,
    start: Path | str,
    out_dir: Path,
    *,
    epochs: int,
    imgsz: int,
    batch: int,
    device: str,
    seed: int = 0,
    patience: int = 30,
    workers: int = 4,
    name: str = "train",
    resume: bool = False,
    config_dir: Path | None = None,
    freeze: int = 0,
    only_classes: Sequence[str] = (),
    lr0: float | None = None,
) -> Path:
    """Train a YOLO detector offline with Ultralytics; returns the path of the best weights.

    ``start`` is a local ``.pt`` checkpoint to fine-tune or a model YAML shipped with Ultralytics.
    ``freeze`` keeps the first that many layers as they are (0: train all).
    ``only_classes`` trains nothing but those classes' score outputs (the last convolution of the head's
    classification branches, their rows alone): every other class of ``start`` scores and boxes exactly as
    before, bit for bit, which is how a class is added without the others losing what they knew.
    ``lr0`` sets AdamW's learning rate (default: Ultralytics' automatic choice).
    Mixed precision is off: Ultralytics' AMP self-check needs a model download.
    """
    apply_offline_settings(config_dir)
    YOLO = _ultralytics_yolo()  # noqa: N806
    run_dir = Path(out_dir) / name
    rows: list[int] = []
    if only_classes:
        rows = _class_rows(Path(start), only_classes)
    if resume:
        last = run_dir / "weights" / "last.pt"
        if not last.is_file():
            raise ModelError(
                f"nothing to resume: {last} does not exist", hint="start the training without --resume"
            )
        model = YOLO(str(last))
        if rows:
            model.add_callback("on_pretrain_routine_end", _mask_other_rows(rows))
        model.train(resume=True)
    else:
        model = YOLO(str(start), task="detect")
        extra: dict[str, Any] = {}
        if rows:
            model.add_callback("on_pretrain_routine_end", _mask_other_rows(rows))
            extra["freeze"] = _all_but_class_outputs(model.model)
        if lr0 is not None:
            extra.update(optimizer="AdamW", lr0=lr0)
        model.train(
            data=str(data_yaml),
            epochs=epochs,
            imgsz=imgsz,
            batch=batch,
            device=device,
            seed=seed,
            deterministic=True,
            patience=patience,
            workers=workers,
            project=str(Path(out_dir).resolve()),
            name=name,
            exist_ok=True,
            amp=False,
            plots=True,
            verbose=False,
            **({"freeze": freeze or None} | extra),
        )
    best = run_dir / "weights" / "best.pt"
    if not best.is_file():
        raise ModelError(f"training ended without {best}", hint=f"see the log in {run_dir}")
    if rows:
        _restore_other_rows(best, Path(start), rows)
    return best


def _class_rows(start: Path, classes: Sequence[str]) -> list[int]:
    """The head rows of ``classes`` in the checkpoint ``start`` (which must be a ``.pt`` file)."""
    if start.suffix != ".pt" or not start.is_file():
        raise ModelError(
            f"training only some classes needs a trained checkpoint to start from, got {start}",
            hint="start from a .pt file (the shipped model or a registered one)",
        )
    names = model_names(start)
    index = {v: k for k, v in names.items()}
    missing = [c for c in classes if c not in index]
    if missing:
        raise ModelError(
            f"{start.name} has no class {', '.join(missing)}",
            hint=f"its classes are {', '.join(names.values())}",
        )
    return sorted(index[c] for c in classes)


def _class_outputs(net: Any) -> tuple[int, list[Any]]:
    """The detection head's layer index and the last convolution of each classification branch."""
    head = net.model[-1]
    branches = getattr(head, "cv3", None)
    if branches is None:
        raise ModelError(
            f"{type(head).__name__} has no classification branches (cv3) to train class by class",
            hint="train without --only-classes, or start from a YOLOv8 or YOLO11 checkpoint",
        )
    return len(net.model) - 1, [branch[-1] for branch in branches]


def _all_but_class_outputs(net: Any) -> list[int | str]:
    """Ultralytics ``freeze`` names for every layer but the classification branches' last convolutions.

    Frozen layers also keep their batch-norm statistics (Ultralytics puts them in eval mode), so the
    features the trained rows see are those the other classes were trained on.
    """
    idx, _ = _class_outputs(net)
    head = net.model[-1]
    names: list[int | str] = list(range(idx))
    names += [f"{idx}.{child}" for child, _ in head.named_children() if child != "cv3"]
    for i, branch in enumerate(head.cv3):
        names += [f"{idx}.cv3.{i}.{j}" for j in range(len(branch) - 1)]
    return names


def _mask_other_rows(rows: list[int]) -> Any:
    """A training callback that zeroes the gradient of every class row but ``rows``."""

    def callback(trainer: Any) -> None:
        net = getattr(trainer.model, "module", trainer.model)
        for conv in _class_outputs(net)[1]:
            mask = conv.weight.new_zeros(conv.weight.shape[0])
            mask[rows] = 1.0
            weight_mask = mask.view(-1, 1, 1, 1)
            conv.weight.register_hook(lambda g, m=weight_mask: g * m)
            if conv.bias is not None:
                conv.bias.register_hook(lambda g, m=mask: g * m)

    return callback


def _restore_other_rows(best: Path, start: Path, rows: list[int]) -> None:
    """Put back into ``best`` every weight and statistic of ``start`` but the trained class rows.

    Frozen layers and masked rows barely move in training (weight decay, rounding of the running
    average); this makes the other classes' outputs exactly the starting model's.
    """
    import torch

    def net_of(ckpt: dict[str, Any]) -> Any:
        return ckpt.get("ema") or ckpt.get("model")

    trained_ckpt = torch.load(best, map_location="cpu", weights_only=False)
    start_ckpt = torch.load(start, map_location="cpu", weights_only=False)
    trained, reference = net_of(trained_ckpt), net_of(start_ckpt)
    if dict(trained.names) != dict(reference.names):
        raise ModelError(
            f"{best} has other classes than {start}",
            hint="train on a dataset with the starting model's classes",
        )
    state = {k: v.clone() for k, v in reference.state_dict().items()}
    new = trained.state_dict()
    idx, convs = _class_outputs(trained)
    for i, conv in enumerate(convs):
        for part in ("weight", "bias") if conv.bias is not None else ("weight",):
            key = f"model.{idx}.cv3.{i}.{len(trained.model[idx].cv3[i]) - 1}.{part}"
            state[key][rows] = new[key][rows]
    trained.load_state_dict(state)
    for key in ("model", "ema"):
        if trained_ckpt.get(key) is not None:
            trained_ckpt[key] = trained
    tmp = best.with_name(best.name + ".tmp")
    torch.save(trained_ckpt, tmp)
    os.replace(tmp, best)


def validate_yolo(
    weights: Path,
    data_yaml: Path,
    out_dir: Path,
    *,
    imgsz: int,
    conf: float,
    iou: float,
    split: str = "val",
    device: str = "cpu",
    config_dir: Path | None = None,
) -> dict[str, float]:
    """Ultralytics' own validation (``model.val``) of ``weights``: ``{"map50": ..., "map50_95": ...}``.

    A reference for the project's own evaluation; run files go under ``out_dir``.
    """
    apply_offline_settings(config_dir)
    model = _load_yolo(weights)
    metrics = model.val(
        data=str(data_yaml), split=split, imgsz=imgsz, conf=conf, iou=iou, batch=1, device=device,
        project=str(Path(out_dir).resolve()), name="val", exist_ok=True, plots=False, verbose=False,
        workers=0,
    )  # fmt: skip
    return {"map50": float(metrics.box.map50), "map50_95": float(metrics.box.map)}


def cuda_available() -> bool:
    """Whether PyTorch sees a CUDA GPU."""
    import torch

    return bool(torch.cuda.is_available())
