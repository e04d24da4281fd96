"""Atomic file writes and GeoParquet with provenance, shared by every stage.

Every output is written to a temporary name beside its target and renamed into place, so a crash
never leaves a half-written file where a finished one is expected.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from plastic_hotspots.records import Provenance

if TYPE_CHECKING:
    import geopandas as gpd

PROVENANCE_KEY = b"plastic_hotspots:provenance"


def check_output_file(path: Path, option: str = "--out", example: str = "out") -> None:
    """Refuse, before any work, an output file that names an existing directory.

    Raises:
        ConfigError: ``path`` is a directory (the run would fail only at its very end).
    """
    from plastic_hotspots.errors import ConfigError

    if Path(path).is_dir():
        raise ConfigError(
            f"{option} {path} is a directory, not a file to write",
            hint=f"give a file to write, e.g. {option} {Path(path) / example}",
        )


def check_output_dir(path: Path, option: str = "--out") -> None:
    """Refuse, before any work, an output folder that names an existing file.

    Raises:
        ConfigError: ``path`` exists and is not a directory.
    """
    from plastic_hotspots.errors import ConfigError

    if Path(path).exists() and not Path(path).is_dir():
        raise ConfigError(
            f"{option} {path} is a file, not a folder to write into",
            hint=f"give a folder name (it is created), e.g. {option} {Path(path).with_suffix('')}-results",
        )


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` if the block succeeds.

    The temporary, ``.<stem>.tmp-<pid>-<random><suffix>``, keeps the target's suffix (writers choose
    their format by it) and names its process: temporaries of ``target`` that a killed run left (their
    process no longer lives) are removed here, by the next write of the same file.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, name = tempfile.mkstemp(
        prefix=f".{target.stem}.tmp-{os.getpid()}-", suffix=target.suffix, dir=target.parent
    )
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()
    try:
        yield tmp
        if tmp.is_file():
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
        tmp.replace(target)
    finally:
        if tmp.is_file():
            tmp.unlink()


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove the temporaries of ``target`` (see :func:`atomic_path`) whose process no longer lives."""
    removed = []
    for stale in Path(target).parent.glob(f".{glob.escape(Path(target).stem)}.tmp-*"):
        pid = stale.name[len(f".{Path(target).stem}.tmp-") :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or process_alive(int(pid)):
            continue  # ours, or a run writing the same file now
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
        removed.append(stale)
    return removed


@contextlib.contextmanager
def whole_folder(target: Path, own: Collection[str]) -> Iterator[Path]:
    """Yield a fresh folder beside ``target`` and swap it in for ``target`` when the block succeeds.

    A run is whole or absent: killed or failed midway, ``target`` keeps its earlier result untouched
    (never new files beside old ones), and the partial folder is removed, by the failing run or, after a
    kill, by the next run into ``target``. Files of an earlier ``target`` whose names are not in ``own``
    (the run's own output names; e.g. a map a user wrote into it) are carried over into the new one.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_folders(target)
    partial = target.parent / f".{target.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.is_dir():
        for item in target.iterdir():
            if item.name not in own and not (partial / item.name).exists():
                item.rename(partial / item.name)
        target.rename(old)
    partial.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _remove_stale_folders(target: Path) -> None:
    """Remove partial or old folders of ``target`` left by runs that no longer live.

    A run killed between the swap's two renames left ``target`` absent, its old result as ``.old-PID`` and its
    finished result as ``.partial-PID``: that swap is finished first (the partial folder becomes ``target``).
    """
    for old in target.parent.glob(f".{target.name}.old-*"):
        pid = old.name.rsplit("-", 1)[-1]
        done = target.parent / f".{target.name}.partial-{pid}"
        if pid.isdigit() and not process_alive(int(pid)) and not target.exists() and done.is_dir():
            done.rename(target)
    for stale in (
        *target.parent.glob(f".{target.name}.partial-*"),
        *target.parent.glob(f".{target.name}.old-*"),
    ):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and process_alive(int(pid)):
            continue  # another run into the same folder is still writing
        shutil.rmtree(stale, ignore_errors=True)


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` lives on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_geoparquet(frame: gpd.GeoDataFrame, path: Path, provenance: Provenance) -> Path:
    """Write GeoParquet (EPSG:4326) with the provenance in the file's key/value metadata."""
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        frame.to_crs("EPSG:4326").to_parquet(tmp, index=False)
        table = pq.read_table(tmp)
        metadata = dict(table.schema.metadata or {})
        metadata[PROVENANCE_KEY] = provenance.to_json().encode()
        pq.write_table(table.replace_schema_metadata(metadata), tmp)
    return path


def read_provenance(path: Path) -> Provenance:
    """The provenance stored in a GeoParquet file written by this project."""
    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata or {}
    if PROVENANCE_KEY not in metadata:
        raise KeyError(f"{path} carries no plastic-hotspots provenance")
    return Provenance.from_json(metadata[PROVENANCE_KEY].decode())
