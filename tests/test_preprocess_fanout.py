"""The per-file fan-out (curation.fanout): chunks of files per task, a failing job quarantined alone,
results in input order, and batches too small for a pool's start-up run in-process."""

from __future__ import annotations

import logging
import operator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial

import pandas as pd
import pytest

from curation import fanout
from curation.fanout import JobCost, chunk_size, map_jobs, pool_pays, run_chunk

INVERSE = partial(operator.truediv, 1.0)  # raises ZeroDivisionError for job 0


class CountingExecutor(ThreadPoolExecutor):
    """A thread pool that records what each task carried."""

    def __init__(self, fail_chunks_with=None):
        super().__init__(max_workers=2)
        self.tasks: list[int] = []
        self.fail_chunks_with = fail_chunks_with

    def submit(self, fn, *args):
        self.tasks.append(len(args[1]) if fn is run_chunk else 1)
        if fn is run_chunk and self.fail_chunks_with in args[1]:
            fut = Future()
            fut.set_exception(RuntimeError("worker lost"))  # as a killed Dask worker reports the whole task
            return fut
        return super().submit(fn, *args)


def _errors(job, exc):
    return ("error", job, type(exc).__name__)


def test_chunks_carry_about_a_tenth_of_a_second_of_work_but_leave_four_tasks_per_worker():
    assert chunk_size(20_000, 2, 0.002) == 50            # 100 ms / 2 ms
    assert chunk_size(195, 2, 0.002) == 25               # ≥ 8 tasks for 2 workers
    assert chunk_size(10_000, 4, 0.035) == 2             # full-size images: 70 ms per task
    assert chunk_size(10_000, 4, 0.5) == 1               # slow jobs: one per task
    assert chunk_size(3, 8, 0.001) == 1


def test_results_are_in_input_order_with_fewer_tasks_than_jobs():
    jobs = list(range(1, 201))
    with CountingExecutor() as ex:
        out = map_jobs(INVERSE, jobs, executor=ex, on_error=_errors, job_s=0.01, workers=2)
    assert out == [1.0 / j for j in jobs]
    assert ex.tasks == [10] * 20


def test_a_job_that_raises_inside_a_chunk_is_the_only_one_given_to_on_error():
    jobs = [3, 1, 0, 2, 5] * 20
    with CountingExecutor() as ex:
        out = map_jobs(INVERSE, jobs, executor=ex, on_error=_errors, job_s=0.01, workers=2)
    assert [o for o in out if isinstance(o, tuple)] == [("error", 0, "ZeroDivisionError")] * 20
    assert [o for o in out if not isinstance(o, tuple)] == [1.0 / j for j in jobs if j]
    assert ex.tasks.count(1) == 20  # each failing job re-run alone, once


def test_a_lost_chunk_is_rerun_one_job_per_task_so_its_other_files_survive():
    jobs = list(range(1, 101))
    with CountingExecutor(fail_chunks_with=37) as ex:
        out = map_jobs(INVERSE, jobs, executor=ex, on_error=_errors, job_s=0.01, workers=2)
    assert out == [1.0 / j for j in jobs]
    assert ex.tasks.count(1) == 10  # the lost chunk of 10, job by job


def test_a_pool_is_started_only_when_each_worker_gets_enough_work():
    assert not pool_pays(195, 2, 0.002)       # the 1 % increment at 64 px: 0.4 s of work
    assert not pool_pays(1000, 1, 1.0)        # one worker never needs a pool
    assert pool_pays(200, 2, 0.035)           # 200 full-size images: 7 s of work
    assert JobCost(0.002, 0.0022).estimate([]) == 0.002


def test_a_small_batch_runs_in_process_says_so_and_gives_the_same_rows(tmp_path, monkeypatch, caplog):
    from curation.preprocess.config import PreprocessConfig
    from curation.preprocess.phantom import write_phantom
    from curation.preprocess.runner import items_from_folder, run

    (tmp_path / "dicom").mkdir()
    for i in range(3):
        write_phantom(tmp_path / "dicom" / f"p{i}.dcm", 256, 200, "L", seed=i)
    config = PreprocessConfig(height=64, mask_height=64)
    one = run(items_from_folder(tmp_path / "dicom"), tmp_path / "one", config, workers=1)

    def no_pool(workers):
        raise AssertionError("a pool was started for a batch too small to pay for it")

    monkeypatch.setattr(fanout, "local_pool", no_pool)
    with caplog.at_level(logging.INFO, logger="curation.fanout"):
        two = run(items_from_folder(tmp_path / "dicom"), tmp_path / "two", config, workers=2)
    pd.testing.assert_frame_equal(one.index, two.index)
    pd.testing.assert_frame_equal(one.quarantine, two.quarantine)
    assert "3 images to preprocess in-process" in caplog.text
    assert str(tmp_path) not in caplog.text


def test_a_batch_worth_a_pool_still_starts_one(tmp_path, monkeypatch):
    started = []
    real = fanout.local_pool

    def counting_pool(workers):
        started.append(workers)
        return real(workers)

    monkeypatch.setattr(fanout, "local_pool", counting_pool)
    out = map_jobs(INVERSE, [1, 2, 0, 4] * 10, workers=2, on_error=_errors, job_s=1.0)
    assert started == [2]
    assert out.count(("error", 0, "ZeroDivisionError")) == 10


@pytest.mark.parametrize("n", [0, 1])
def test_empty_and_single_job_batches_run_in_process(n):
    assert map_jobs(INVERSE, [2.0] * n, workers=4, on_error=_errors, job_s=10.0) == [0.5] * n
