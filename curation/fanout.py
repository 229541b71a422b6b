"""Per-file fan-out shared by the catalogue and preprocessing, on any ``concurrent.futures.Executor``.

Default: a local process pool (spawn context) whose workers exit when their parent dies (a
SIGKILLed CLI or Dagster run must not leave idle children behind). Any other executor — e.g.
``distributed.Client.get_executor()`` — can be passed instead; results come back in input
order either way, and a job whose worker fails (a crashed process, a lost Dask worker) becomes
``on_error(job, exc)`` instead of aborting the batch.

Jobs travel in **chunks** (:func:`chunk_size`): a Dask task costs ≈ 4 ms of CPU (client, scheduler
and worker; bench/README_scale.md), more than a small image's own work, so each task carries
~100 ms of estimated work. A chunk that fails as a whole (its worker died) or in which one job
raised is re-run one job per task, so only the culprit reaches ``on_error``. A batch whose
estimated work does not pay for starting a local pool (:func:`pool_pays`) runs in-process.
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import os
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

log = logging.getLogger(__name__)

_POLL_S = 0.5
TASK_TARGET_S = 0.1        # estimated work per task: ≫ 4 ms of per-task overhead, small enough to balance
MIN_TASKS_PER_WORKER = 4   # ... but never fewer tasks than this per worker
# Starting a spawn worker (interpreter + pydicom + OpenCV + our code) measured ≈ 0.8 CPU-s (3.3 CPU-s for the
# 4 processes of one catalogue + preprocessing run, bench/README_scale.md). A pool is used only when each
# worker gets at least this much estimated work, so start-up stays ≤ ~1/3 of its CPU and the wall time falls.
POOL_MIN_WORK_PER_WORKER_S = 2.5


@dataclass(frozen=True)
class JobCost:
    """Estimated CPU seconds of one job: ``base_s + per_mb_s × file size in MB`` (one core, measured)."""

    base_s: float
    per_mb_s: float

    def estimate(self, paths: Sequence[str], sample: int = 64) -> float:
        """Mean estimate over an evenly spaced, deterministic sample of ``paths`` (missing files count 0 MB)."""
        if not paths:
            return self.base_s
        step = max(1, len(paths) // sample)
        sizes = []
        for p in paths[::step][:sample]:
            try:
                sizes.append(os.stat(p).st_size)
            except OSError:
                sizes.append(0)
        return self.base_s + self.per_mb_s * (sum(sizes) / len(sizes)) / 1e6


def chunk_size(n_jobs: int, parallelism: int, job_s: float) -> int:
    """Jobs per task: ~``TASK_TARGET_S`` of work each, yet ≥ ``MIN_TASKS_PER_WORKER`` tasks per worker."""
    if n_jobs <= 0:
        return 1
    by_work = max(1, int(TASK_TARGET_S / max(job_s, 1e-6)))
    by_balance = max(1, math.ceil(n_jobs / (MIN_TASKS_PER_WORKER * max(1, parallelism))))
    return min(by_work, by_balance)


def pool_pays(n_jobs: int, workers: int, job_s: float) -> bool:
    return workers > 1 and n_jobs >= 2 and n_jobs * job_s >= POOL_MIN_WORK_PER_WORKER_S * workers


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
             job_s: float = 0.0, what: str = "jobs") -> list:
    """``[fn(job) for job in jobs]`` in input order, on ``executor`` or a local pool of ``workers``.

    ``job_s``: estimated CPU seconds per job (:class:`JobCost`), for the chunk size and the pool decision."""
    if executor is None:
        if not pool_pays(len(jobs), workers, job_s):
            if workers > 1:
                log.info("%d %s in-process: ~%.1f CPU-s of estimated work does not pay for starting %d pool "
                         "workers (needs %.1f s per worker)", len(jobs), what, len(jobs) * job_s, workers,
                         POOL_MIN_WORK_PER_WORKER_S)
            return list(_tick((_safe(fn, j, on_error) for j in jobs), progress))
        workers = min(workers, len(jobs))
        with local_pool(workers) as pool:
            return _collect(pool, fn, jobs, on_error, progress, chunk_size(len(jobs), workers, job_s))
    parallelism = _parallelism(executor, workers)
    return _collect(executor, fn, jobs, on_error, progress, chunk_size(len(jobs), parallelism, job_s))


def _parallelism(executor: Executor, default: int) -> int:
    """Worker threads behind ``executor``: a Dask cluster's total, a process pool's size, else ``default``."""
    client = getattr(executor, "_client", None)  # distributed's ClientExecutor keeps its Client here
    if client is not None and hasattr(client, "nthreads"):
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:  # the scheduler is unreachable: the first submit will say so
            return max(1, default)
    return max(1, getattr(executor, "_max_workers", None) or default)


def _safe(fn, job, on_error):
    try:
        return fn(job)
    except Exception as exc:  # fn never raises by contract; this keeps the batch alive if it does
        return on_error(job, exc)


class _Raised:
    """Marks a job of a chunk that raised on the worker; it is re-run alone for its own error."""

    __slots__ = ()


def run_chunk(fn: Callable[[Any], Any], jobs: Sequence[Any]) -> list:
    """What one task runs on a worker: ``fn`` over its jobs; a job that raises does not stop the others."""
    out = []
    for job in jobs:
        try:
            out.append(fn(job))
        except Exception:
            out.append(_Raised())
    return out


def _collect(executor: Executor, fn, jobs, on_error, progress, size: int) -> list:
    chunks = [list(jobs[i:i + size]) for i in range(0, len(jobs), size)]
    futures = [_submit(executor, run_chunk, fn, chunk) if size > 1 else _submit(executor, fn, chunk[0])
               for chunk in chunks]
    out = []
    for chunk, fut in zip(chunks, futures):
        try:
            res = _result(fut)
            results = res if size > 1 else [res]
        except BaseException as exc:  # BrokenProcessPool, a killed Dask worker, a pickling error
            if isinstance(exc, KeyboardInterrupt):
                raise
            if size == 1:
                results = [on_error(chunk[0], exc)]
            else:  # the whole chunk is lost: run each of its jobs alone, so only the culprit is quarantined
                results = [_Raised()] * len(chunk)
        out.extend(_alone(executor, fn, job, on_error) if isinstance(r, _Raised) else r
                   for job, r in zip(chunk, results))
        if progress is not None:
            progress(len(chunk))
    return out


def _submit(executor: Executor, *args):
    try:
        return executor.submit(*args)
    except Exception as exc:  # a job that cannot even be submitted (pickling, a closed cluster)
        return exc


def _result(fut):
    if isinstance(fut, BaseException):
        raise fut
    return fut.result()


def _alone(executor: Executor, fn, job, on_error):
    """One job as its own task: its result, or ``on_error`` with the error it raised (or its worker's)."""
    try:
        return _result(_submit(executor, fn, job))
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        return on_error(job, exc)


def _tick(iterable: Iterable, progress):
    for item in iterable:
        if progress is not None:
            progress(1)
        yield item
