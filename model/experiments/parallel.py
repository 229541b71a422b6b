"""Training an experiment's models side by side (``mammo-mtl experiments --jobs N``).

At the CPU budgets one training keeps about one core busy however many threads TensorFlow is given
(the bench protocol's runs used 1.0–1.2 cores on average on the 2-core machine: small convolutions,
instance norm and the input pipeline do not spread over threads). So N trainings in N processes,
each with ``cores / N`` TensorFlow threads, finish an experiment up to N times sooner.

:func:`train_in_parallel` trains every model the requested tables need into the same
content-addressed cache the serial walk reads (:class:`~model.experiments.runner.Runner`), a model
only after the models it starts from (``init``) or is pseudo-labelled by (``pseudo_from``);
afterwards :func:`~model.experiments.runner.run_experiments` finds every model trained and only
predicts and tabulates. Models already in the cache are not trained again. A failed training is
reported with its key once the others have finished; nothing it did not write is lost.

TensorFlow's CPU kernels may round differently with another thread count, so a model trained with
``--jobs 2`` need not be bit-identical to one trained with ``--jobs 1``; the same ``--jobs`` on the
same machine gives the same bytes. ``timing.json`` beside each model records its thread count.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import pandas as pd

from model.experiments.budgets import Budget
from model.experiments.jobs import EvalJob, TrainJob, frame_hash
from model.experiments.runner import JOB_FILE, Executor, Runner, table_plan
from model.experiments.specs import resolve_tables


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_training(jobs: int, cores: int | None = None) -> int:
    """TensorFlow intra-op threads for each of ``jobs`` trainings side by side (at least 1)."""
    if jobs < 1:
        raise ValueError(f"jobs={jobs} must be >= 1")
    return max(1, (cores or available_cores()) // jobs)


def planned_evals(tables: Sequence[str], b: Budget, manifests: Mapping[tuple[str, str], pd.DataFrame]
                  ) -> list[EvalJob]:
    """Every eval job of the tables at every seed, in the order the serial walk meets them."""
    hashes = {k: frame_hash(v) for k, v in manifests.items()}
    return [ev for key in resolve_tables(tables) for jobs in table_plan(key, b, hashes)[1] for ev in jobs.values()]


def _dependencies(job: TrainJob) -> list[TrainJob]:
    return [d for d in (job.init, job.pseudo_from) if d is not None]


def training_order(evals: Iterable[EvalJob]) -> list[TrainJob]:
    """Every model the eval jobs need, each once, a model's dependencies before it."""
    order: dict[str, TrainJob] = {}

    def visit(job: TrainJob) -> None:
        for dep in _dependencies(job):
            visit(dep)
        order.setdefault(job.key, job)

    for ev in evals:
        for member in ev.members:
            visit(member)
    return list(order.values())


def is_trained(models_root: Path, job: TrainJob) -> bool:
    out = Path(models_root) / job.key
    return (out / JOB_FILE).is_file() and (out / "model.keras").exists()


_WORKER: dict[str, Runner] = {}


def _start_worker(threads: int, models_root: Path, manifests: Mapping, executor: Executor) -> None:
    if threads:
        import tensorflow as tf  # before any op runs, or the thread counts are fixed already

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    _WORKER["runner"] = Runner(Path(models_root), manifests, executor, log=lambda m: print(m, flush=True))


def _train(job: TrainJob) -> str:
    _WORKER["runner"].model_path(job)
    return job.key


def train_in_parallel(jobs: Sequence[TrainJob], *, workers: int, models_root: Path,
                      manifests: Mapping[tuple[str, str], pd.DataFrame], executor: Executor, threads: int = 0,
                      log: Callable[[str], None] = print) -> list[str]:
    """Train the jobs not yet in the cache on ``workers`` processes (``threads`` TensorFlow threads
    each; 0 leaves TensorFlow's default); returns the keys trained here. Raises ``RuntimeError``
    naming every failed training (and the ones that could not start because of it)."""
    if workers < 1:
        raise ValueError(f"workers={workers} must be >= 1")
    done = {j.key for j in jobs if is_trained(models_root, j)}
    todo = [j for j in jobs if j.key not in done]
    if not todo:
        return []
    log(f"training {len(todo)} model(s) on {workers} process(es), {threads or 'default'} TensorFlow thread(s) each"
        f" ({len(done)} already trained)")
    needed = {tuple(j.train_on) for j in todo} | {tuple(d.train_on) for j in todo for d in _dependencies(j)}
    frames = {k: v for k, v in manifests.items() if tuple(k) in needed}
    failed: dict[str, str] = {}
    trained: list[str] = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_start_worker,
                             initargs=(threads, Path(models_root), frames, executor)) as pool:
        running: dict[Future, TrainJob] = {}
        while todo or running:
            blocked = [j for j in todo if any(d.key in failed for d in _dependencies(j))]
            for j in blocked:
                failed[j.key] = "not trained: a model it starts from failed"
                todo.remove(j)
            for j in [j for j in todo if all(d.key in done for d in _dependencies(j))]:
                if len(running) >= workers:
                    break
                running[pool.submit(_train, j)] = j
                todo.remove(j)
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                job = running.pop(future)
                try:
                    future.result()
                except Exception as exc:  # reported below, after the other trainings finished
                    failed[job.key] = f"{type(exc).__name__}: {exc}"
                    log(f"training {job.key} failed: {failed[job.key]}")
                else:
                    done.add(job.key)
                    trained.append(job.key)
    if failed:
        raise RuntimeError(f"{len(failed)} training(s) failed: " + "; ".join(f"{k}: {v}" for k, v in failed.items()))
    return trained
