"""The one adapter around Dask (and the only module that imports ``dask`` or ``distributed``).

A :class:`Cluster` is an open connection to Dask workers: either a cluster of worker processes this
process starts on the local machine (bound to 127.0.0.1, no dashboard), or an existing cluster reached
through its scheduler's address. Work goes out as plain functions of picklable arguments and comes back
as results, in completion order, with a bounded number of tasks in flight::

    with open_cluster(ClusterOptions(workers=2)) as cluster:
        for index, result in cluster.map_unordered(work, items):
            ...

When a worker dies, Dask runs its unfinished tasks again on the other workers; the caller sees each
task's result once. Dask is an optional dependency (the ``scale`` extra) and is imported only when a
cluster is opened, so importing this module costs nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from plastic_hotspots.errors import ClusterError, ConfigError

T = TypeVar("T")
R = TypeVar("R")

INSTALL_HINT = "pip install 'plastic-hotspots[scale]' (Dask), here and on every worker"
# Thread pools of numerical libraries that read their size from the environment when they load.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# Dask settings of local workers (and of the ones their nannies start again). The statistical profiler
# samples every thread's stack every 10 ms: a few per cent of a core that tasks miss once every core
# runs a worker, and it only feeds the dashboard, which local clusters do not serve.
WORKER_CONFIG = {"distributed.worker.profile.enabled": False}  # dotted: the nanny merges it shallowly


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    """Where the workers are.

    Attributes:
        scheduler: Address of an existing Dask scheduler (``tcp://host:8786``); ``None`` starts a local
            cluster.
        workers: Worker processes of a local cluster.
        threads_per_worker: Threads of each local worker (also the size of the numerical libraries'
            thread pools there); ``None`` is 1. Workers of an existing cluster keep their own.
        timeout_s: How long to wait for the scheduler to answer and for a first worker to join.
    """

    scheduler: str | None = None
    workers: int = 2
    threads_per_worker: int | None = None
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ClusterError(f"a cluster needs at least 1 worker, got {self.workers}", hint="use 1 or more")
        if self.threads_per_worker is not None and self.threads_per_worker < 1:
            raise ClusterError(
                f"threads per worker must be at least 1, got {self.threads_per_worker}", hint="use 1 or more"
            )
        if not self.timeout_s > 0:
            raise ClusterError(f"the timeout must be positive, got {self.timeout_s} s", hint="use e.g. 10")


class Cluster:
    """Dask workers to run tasks on; close it (or use it as a context manager) when done.

    Build it with :func:`open_cluster`.
    """

    def __init__(self, client: Any, local: Any | None) -> None:
        self._client = client
        self._local = local

    @property
    def address(self) -> str:
        """The scheduler's address."""
        return str(self._client.scheduler.address)

    @property
    def is_local(self) -> bool:
        """Whether this process started the cluster (and closes it)."""
        return self._local is not None

    def worker_threads(self) -> dict[str, int]:
        """Threads of each worker now connected, by worker address."""
        workers = self._client.scheduler_info(n_workers=-1)["workers"]
        return {str(addr): int(info["nthreads"]) for addr, info in workers.items()}

    def run_on_workers(self, fn: Callable[[], R]) -> dict[str, R]:
        """Call ``fn()`` once in every worker process now connected (outside the task queue).

        Returns:
            Each worker's result, by worker address.
        """
        return {str(k): v for k, v in self._client.run(fn).items()}

    def map_unordered(
        self, fn: Callable[[T], R], items: Sequence[T], *, in_flight: int | None = None, name: str = "task"
    ) -> Iterator[tuple[int, R]]:
        """Run ``fn(item)`` for every item on the workers; yield ``(index, result)`` as each completes.

        At most ``in_flight`` tasks are queued at a time (default: twice the workers' threads), so
        results arrive steadily and little work is queued when the caller stops. ``fn`` and the items
        are pickled to the workers: ``fn`` must be a module-level function, or an instance of a
        module-level class, from a module the workers can import. Each index is yielded once, even
        when a worker died and Dask ran its task again.

        Raises:
            ClusterError: A task was running on workers that died, again and again (Dask's
                ``allowed-failures``), e.g. an item that makes a worker run out of memory.
            Exception: What ``fn`` raised on the worker, as it was raised.
        """
        dist = _distributed()
        limit = in_flight or max(2, 2 * sum(self.worker_threads().values()))
        run_id = uuid.uuid4().hex[:8]
        pending: dict[str, tuple[int, Any]] = {}
        todo = iter(enumerate(items))
        queue = dist.as_completed(loop=self._client.loop)

        def submit_next() -> None:
            nxt = next(todo, None)
            if nxt is not None:
                index, item = nxt
                future = self._client.submit(fn, item, key=f"{name}-{run_id}-{index}", pure=False)
                pending[future.key] = (index, future)
                queue.add(future)

        for _ in range(limit):
            submit_next()
        try:
            for future in queue:
                index, _ = pending.pop(future.key)
                try:
                    result = future.result()
                except dist.KilledWorker as exc:
                    raise ClusterError(
                        f"task {index} of {len(items)} was running on workers that died each time ({exc})",
                        hint="look for an input that needs more memory than a worker has; the results "
                        "received before are kept",
                    ) from exc
                finally:
                    future.release()
                submit_next()
                yield index, result
        finally:
            if pending:  # stopped early: the queued tasks are not wanted any more
                self._client.cancel([f for _, f in pending.values()])

    def close(self) -> None:
        """Disconnect; a local cluster's workers are stopped, an existing cluster keeps running."""
        try:
            self._client.close()
        finally:
            if self._local is not None:
                self._local.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_cluster(options: ClusterOptions) -> Cluster:
    """Start a local cluster or connect to an existing scheduler.

    A local cluster has ``options.workers`` worker processes (each with a nanny that restarts it when
    it dies), listens on 127.0.0.1 only and serves no dashboard.

    Raises:
        ClusterError: Dask is not installed, the scheduler cannot be reached, or no worker joined it.
    """
    dist = _distributed()
    timeout = f"{options.timeout_s}s"
    if options.scheduler is None:
        threads = options.threads_per_worker or 1
        local = dist.LocalCluster(
            n_workers=options.workers,
            threads_per_worker=threads,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.WARNING,
            env=dict.fromkeys(THREAD_ENV, str(threads)),
            config=WORKER_CONFIG,
        )
        try:
            client = dist.Client(local, timeout=timeout, set_as_default=False)
        except BaseException:
            local.close()
            raise
        return Cluster(client, local)
    address = options.scheduler.strip()
    try:  # a malformed address is refused here: a Client made from one hangs on closing for 20 s
        scheme, location = dist.comm.parse_address(address)
        if scheme in ("tcp", "tls"):
            dist.comm.parse_host_port(location)
    except ValueError as exc:
        raise ClusterError(
            f"--scheduler {address} is not a scheduler address ({exc})",
            hint="give it as tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786 (the address `dask scheduler` prints)",
        ) from None
    try:
        client = dist.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address} ({exc})",
            hint="start one there with `dask scheduler` and give its address as tcp://HOST:8786; check "
            "that the port is open from this machine (firewall, VPN); or leave out --scheduler to run "
            "on this machine",
        ) from exc
    try:
        client.wait_for_workers(1, timeout=options.timeout_s)
    except (OSError, TimeoutError) as exc:
        client.close()
        raise ClusterError(
            f"the Dask scheduler at {address} has no workers",
            hint=f"start workers on the machines that should do the work: `dask worker {address}`",
        ) from exc
    return Cluster(client, None)


def check_workers_or_scheduler(workers: int, scheduler: str | None) -> None:
    """Refuse local workers (``--workers`` above 1) and an existing cluster (``--scheduler``) together.

    Raises:
        ConfigError: Both were asked for.
    """
    if scheduler is not None and workers > 1:
        raise ConfigError(
            "--workers starts workers on this machine, --scheduler uses an existing cluster's",
            hint="give one of them: the workers of an existing cluster are started with `dask worker`",
        )


@contextmanager
def optional_cluster(
    workers: int, scheduler: str | None, *, threads_per_worker: int | None = None, timeout_s: float = 10.0
) -> Iterator[Cluster | None]:
    """The cluster a command's ``--workers``/``--scheduler`` ask for, open for the ``with`` block.

    Yields ``None`` (nothing is opened, Dask is not imported) with one worker and no scheduler.

    Args:
        workers: Worker processes to start on this machine; 1 or less starts none.
        scheduler: Address of an existing Dask scheduler, or ``None``.
        threads_per_worker: Threads of each local worker (``None``: 1).
        timeout_s: How long to wait for the scheduler to answer and for a first worker to join.

    Raises:
        ConfigError: Both local workers and a scheduler were asked for.
        ClusterError: See :func:`open_cluster`.
    """
    check_workers_or_scheduler(workers, scheduler)
    if scheduler is None and workers <= 1:
        yield None
        return
    options = ClusterOptions(
        scheduler=scheduler,
        workers=max(1, workers),
        threads_per_worker=threads_per_worker,
        timeout_s=timeout_s,
    )
    with open_cluster(options) as cluster:
        yield cluster


def current_worker_threads() -> int | None:
    """Threads of the Dask worker running the calling task; ``None`` outside a Dask worker."""
    try:
        worker = _distributed().get_worker()
    except (ClusterError, ValueError):
        return None
    return int(worker.state.nthreads)


def _distributed() -> Any:
    """The ``distributed`` module, imported on first use (``import plastic_hotspots`` stays light)."""
    try:
        import distributed
    except ImportError as exc:
        raise ClusterError(f"running on Dask workers needs Dask ({exc})", hint=INSTALL_HINT) from exc
    return distributed
