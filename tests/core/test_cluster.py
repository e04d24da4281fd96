"""The command lines' cluster options: one check and one context manager for every stage."""

from __future__ import annotations

import sys

import pytest

from plastic_hotspots.cluster import check_workers_or_scheduler, optional_cluster
from plastic_hotspots.errors import ClusterError, ConfigError, PlasticHotspotsError


def test_workers_and_a_scheduler_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="--workers starts workers on this machine") as info:
        check_workers_or_scheduler(2, "tcp://127.0.0.1:8786")
    assert "`dask worker`" in info.value.hint
    assert isinstance(info.value, PlasticHotspotsError)
    with (
        pytest.raises(ConfigError, match="--scheduler uses an existing cluster's"),
        optional_cluster(2, "tcp://127.0.0.1:8786"),
    ):
        pass


@pytest.mark.parametrize(("workers", "scheduler"), [(1, None), (0, None), (2, None), (1, "tcp://h:1")])
def test_one_of_them_alone_is_accepted(workers: int, scheduler: str | None) -> None:
    check_workers_or_scheduler(workers, scheduler)


def test_one_worker_and_no_scheduler_opens_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # importing Dask would fail
    with optional_cluster(1, None) as cluster:
        assert cluster is None


def test_asking_for_workers_opens_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # so the attempt shows as the missing extra
    with pytest.raises(ClusterError, match="needs Dask"), optional_cluster(2, None, timeout_s=1.0):
        pass
