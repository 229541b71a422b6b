"""Per-file fan-out shared by the catalogue and preprocessing, on any ``concurrent.futures.Executor``.

Default: a local process pool (spawn context) whose workers exit when their parent dies (a
SIGKILLed CLI or Dagster run must not leave idle children behind). Any other executor — e.g.
``distributed.Client.get_executor()`` — can be passed instead; results come back in input
order either way, and a job whose worker fails (a crashed process, a lost Dask worker) becomes
``on_error(job, exc)`` instead of aborting the batch.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any, Callable, Iterable, Sequence

_POLL_S = 0.5


def _exit_with_parent(parent_pid: int) -> None:
    """Worker initializer: a daemon thread that ends the worker once its parent is gone."""
    try:  # Linux: the kernel sends SIGTERM when the parent dies
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except Exception:  # not Linux: the polling thread below still works
        pass

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(_POLL_S)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def local_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                               initializer=_exit_with_parent, initargs=(os.getpid(),))


def map_jobs(fn: Callable[[Any], Any], jobs: Sequence[Any], *, workers: int = 1, executor: Executor | None = None,
             on_error: Callable[[Any, BaseException], Any], progress: Callable[[int], None] | None = None,
             min_parallel: int = 2) -> list:
    """``[fn(job) for job in jobs]`` in input order, on ``executor`` or a local pool of ``workers``."""
    if executor is None and (workers <= 1 or len(jobs) < min_parallel):
        return list(_tick((_safe(fn, j, on_error) for j in jobs), progress))
    if executor is not None:
        return _collect(executor, fn, jobs, on_error, progress)
    with local_pool(min(workers, len(jobs))) as pool:
        return _collect(pool, fn, jobs, on_error, progress)


def _safe(fn, job, on_error):
    try:
        return fn(job)
    except Exception as exc:  # fn never raises by contract; this keeps the batch alive if it does
        return on_error(job, exc)


def _collect(executor: Executor, fn, jobs, on_error, progress) -> list:
    futures = []
    for job in jobs:
        try:
            futures.append(executor.submit(fn, job))
        except Exception as exc:  # a job that cannot even be submitted (pickling, a closed cluster)
            futures.append(exc)
    out = []
    for job, fut in zip(jobs, futures):
        try:
            if isinstance(fut, BaseException):
                raise fut
            out.append(fut.result())
        except BaseException as exc:  # BrokenProcessPool, a killed Dask worker, a pickling error
            if isinstance(exc, KeyboardInterrupt):
                raise
            out.append(on_error(job, exc))
        if progress is not None:
            progress(1)
    return out


def _tick(iterable: Iterable, progress):
    for item in iterable:
        if progress is not None:
            progress(1)
        yield item
