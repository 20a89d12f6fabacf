"""Where sweep chunks run: in this process, a local process pool, or a Dask cluster.

Every executor runs `fn(context, chunk)` for each chunk and yields `(chunk index, result)`
as chunks finish, in completion order. `context` (the loaded base configs and traces) is
shipped to each worker once, not per chunk: through the pool initializer locally, through
`Client.scatter(broadcast=True)` on Dask. `fn` must be a module-level function so workers
can import it.

Dask is optional (`pip install 'sparsespikformer[dask]'`); asking for it without it
installed is a one-line error, not an ImportError traceback.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol

from sparsespikformer.simulator.errors import InputError

EXECUTORS = ("local", "dask")

ChunkFn = Callable[[Any, Any], Any]

log = logging.getLogger(__name__)


class Executor(Protocol):
    workers: int

    def run(self, fn: ChunkFn, context: Any, chunks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        ...

    def close(self) -> None:
        ...


class InlineExecutor:
    """Runs chunks one after another in this process (workers=1: no pickling at all)."""

    workers = 1

    def run(self, fn: ChunkFn, context: Any, chunks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        for index, chunk in enumerate(chunks):
            yield index, fn(context, chunk)

    def close(self) -> None:
        pass

    def __enter__(self) -> "InlineExecutor":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


# ----------------------------------------------------------------------------- local pool

_WORKER_STATE: dict[str, Any] = {}


def _init_worker(fn: ChunkFn, context: Any) -> None:
    # Ctrl-C goes to the whole process group; only the parent should handle it, so the
    # workers do not each print a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_STATE["fn"] = fn
    _WORKER_STATE["context"] = context


def _run_in_worker(chunk: Any) -> Any:
    return _WORKER_STATE["fn"](_WORKER_STATE["context"], chunk)


def _pool_context() -> multiprocessing.context.BaseContext:
    """forkserver where available: forking a parent that has loaded torch or started
    threads is unsafe, and the server preloads the worker imports once for all workers."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["numpy", "pandas", "sparsespikformer.simulator.trace"])
        return context
    return multiprocessing.get_context("spawn")


class LocalExecutor:
    """A process pool on this machine; the pool starts on the first `run`."""

    def __init__(self, workers: int | None = None, max_in_flight_per_worker: int = 4) -> None:
        self.workers = _check_workers(workers) if workers else default_workers()
        self._in_flight = max(1, max_in_flight_per_worker) * self.workers
        self._pool: ProcessPoolExecutor | None = None

    def run(self, fn: ChunkFn, context: Any, chunks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        if self._pool is not None:
            self.close()
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=_pool_context(),
                                         initializer=_init_worker, initargs=(fn, context))
        # A bounded window of submitted chunks: results stream back in completion order
        # and an interrupted sweep has little queued work to throw away.
        pending: dict[Future, int] = {}
        next_chunk = 0
        try:
            while pending or next_chunk < len(chunks):
                while next_chunk < len(chunks) and len(pending) < self._in_flight:
                    pending[self._pool.submit(_run_in_worker, chunks[next_chunk])] = next_chunk
                    next_chunk += 1
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    index = pending.pop(future)
                    yield index, future.result()
        except BaseException:
            self._terminate()
            raise

    def _terminate(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if hasattr(pool, "terminate_workers"):  # Python >= 3.14
            pool.terminate_workers()
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


# ----------------------------------------------------------------------------- dask


def _run_dask_chunk(fn: ChunkFn, context: Any, chunk: Any) -> Any:
    return fn(context, chunk)


class DaskExecutor:
    """Chunks on a Dask cluster: `scheduler` is an address (`tcp://host:8786`) or None for a
    `LocalCluster` of `workers` single-threaded workers (`processes=False` runs them as
    threads of this process, which starts fast and suits tests)."""

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 processes: bool = True) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as err:
            raise InputError("--executor dask needs dask[distributed] "
                             f"(pip install 'sparsespikformer[dask]'): {err}") from None
        self._cluster = None
        if scheduler:
            try:
                self._client = Client(scheduler, timeout="30s")
            except OSError as err:
                raise InputError(f"--scheduler {scheduler}: cannot connect ({err})") from None
            self.workers = max(1, sum(self._client.nthreads().values()))
        else:
            self.workers = _check_workers(workers) if workers else default_workers()
            self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                         processes=processes, dashboard_address=None)
            self._client = Client(self._cluster)

    def run(self, fn: ChunkFn, context: Any, chunks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        from dask.distributed import as_completed

        # a list, so a dict context is not split into one future per key
        [shared] = self._client.scatter([context], broadcast=True)  # once per worker
        futures = [self._client.submit(_run_dask_chunk, fn, shared, chunk, pure=False)
                   for chunk in chunks]
        index_of = {future.key: index for index, future in enumerate(futures)}
        try:
            for future in as_completed(futures):
                yield index_of[future.key], future.result()
        except BaseException:
            self._client.cancel(futures)
            raise
        finally:
            self._client.cancel(shared)

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> "DaskExecutor":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


# ----------------------------------------------------------------------------- choosing


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def _check_workers(workers: int) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"--workers: expected an integer >= 1, got {workers!r}")
    return workers


def check_executor_args(kind: str, workers: int | None, scheduler: str | None) -> None:
    """Fail before any work starts on arguments no executor could accept."""
    if kind not in EXECUTORS:
        raise InputError(f"--executor: expected one of {EXECUTORS}, got {kind!r}")
    if scheduler and kind != "dask":
        raise InputError("--scheduler: only meaningful with --executor dask")
    if workers is not None:
        _check_workers(workers)


def make_executor(kind: str = "local", *, workers: int | None = None,
                  scheduler: str | None = None, dask_processes: bool = True) -> Executor:
    """`local` (a process pool; in-process when workers == 1) or `dask`."""
    check_executor_args(kind, workers, scheduler)
    if kind == "dask":
        return DaskExecutor(scheduler=scheduler, workers=workers, processes=dask_processes)
    if workers == 1:
        return InlineExecutor()
    return LocalExecutor(workers=workers)


__all__ = ["EXECUTORS", "Executor", "InlineExecutor", "LocalExecutor", "DaskExecutor",
           "make_executor", "check_executor_args", "default_workers"]
