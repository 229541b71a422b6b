"""Dask on a ``distributed.LocalCluster`` (2 worker processes, 1 thread each, 127.0.0.1), compared
byte for byte with the in-process run of the same demo batch:

- the per-batch job with the ``dask`` executor and a persistent instance: every step ran in a
  worker process, and every file it wrote is identical;
- per-image fan-out inside the assets (``dask`` resource with the scheduler address): catalogue and
  cache are identical to the local pool, the files really went through the cluster, and a file
  that fails on a worker is quarantined with a reason while the batch goes on.
"""

from __future__ import annotations

import os

import pandas as pd
import pytest

from curation.home import MammoHome
from pipelines.local_services import dask_unavailable

pytestmark = pytest.mark.skipif(dask_unavailable() is not None, reason=dask_unavailable() or "")

BATCH = "hmi"


@pytest.fixture(scope="module")
def cluster():
    from pipelines.local_services import local_dask_cluster

    with local_dask_cluster(workers=2, threads_per_worker=1) as address:
        yield address


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    from pipelines.scale_check import failure_messages, make_demo_batch, output_digests, run_in_process

    home = MammoHome(tmp_path_factory.mktemp("in_process")).ensure()
    make_demo_batch(home, BATCH, patients=3, height=256)
    result = run_in_process(home, BATCH)
    assert result.success, failure_messages(result)
    return home, output_digests(home)


def _copy(reference, tmp_path_factory, name) -> MammoHome:
    from pipelines.scale_check import copy_inputs

    home = MammoHome(tmp_path_factory.mktemp(name)).ensure()
    copy_inputs(reference[0], home)
    return home


def _task_prefixes(address: str) -> set[str]:
    from distributed import Client

    with Client(address, set_as_default=False) as client:
        return set(client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes)))


@pytest.fixture(scope="module")
def on_dask_executor(cluster, reference, tmp_path_factory):
    import dagster as dg

    from pipelines.scale_check import output_digests, run_on_dask

    home = _copy(reference, tmp_path_factory, "dask_executor")
    with dg.instance_for_test(temp_dir=str(tmp_path_factory.mktemp("dagster_home"))) as instance:
        result = run_on_dask(home, BATCH, instance, address=cluster)
        step_pids = {e.pid for e in result.all_events if e.step_key and e.pid is not None}
        persisted = instance.get_run_by_id(result.run_id)
    return {"result": result, "digests": output_digests(home), "pids": step_pids, "run": persisted}


def test_the_batch_job_on_the_dask_executor_succeeds_on_a_persistent_instance(on_dask_executor):
    assert on_dask_executor["result"].success
    assert on_dask_executor["run"].status.value == "SUCCESS"


def test_every_step_ran_in_a_dask_worker_process(on_dask_executor):
    assert on_dask_executor["pids"] and os.getpid() not in on_dask_executor["pids"]


def test_the_dask_executor_writes_the_same_bytes_as_the_in_process_run(on_dask_executor, reference):
    from pipelines.scale_check import compare

    assert len(reference[1]) > 5
    assert compare(reference[1], on_dask_executor["digests"]) == []


def test_fan_out_inside_the_assets_matches_the_local_pool_byte_for_byte(cluster, reference, tmp_path_factory):
    from pipelines.scale_check import compare, job_run_config, output_digests
    from pipelines.definitions import BATCH_JOB, defs
    from pipelines.partitions import batch_partitions
    import dagster as dg

    home = _copy(reference, tmp_path_factory, "fan_out")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(batch_partitions.name, [BATCH])
    config = job_run_config(home)
    config["resources"]["dask"] = {"config": {"address": cluster}}
    result = defs.resolve_job_def(BATCH_JOB).execute_in_process(partition_key=BATCH, instance=instance,
                                                                 run_config=config, raise_on_error=False)
    assert result.success
    assert compare(reference[1], output_digests(home)) == []
    # the files went to the cluster in chunks (curation.fanout.run_chunk), not one task per file
    assert "run_chunk" in _task_prefixes(cluster)


def test_a_file_that_fails_on_a_worker_is_quarantined_with_a_reason_and_the_batch_goes_on(cluster, reference):
    from dataclasses import replace

    from distributed import Client

    from curation.preprocess.config import PreprocessConfig
    from curation.preprocess.runner import items_from_folder, run

    home, _ = reference
    items = items_from_folder(home.batch_root(BATCH) / "dicom")
    config = PreprocessConfig(height=64, mask_height=64)
    with Client(cluster, set_as_default=False) as client:
        executor = client.get_executor()
        good = run(items, home.root / "fanout_cache", config, executor=executor)
        broken = items[:1] + [replace(items[1], path=str(home.root / "gone.dcm"))] + items[2:]
        bad = run(broken, home.root / "fanout_cache_bad", config, executor=executor)
    assert len(good.index) + len(good.quarantine) == len(items)
    assert len(bad.index) + len(bad.quarantine) == len(items)
    assert len(bad.quarantine) == len(good.quarantine) + 1
    assert set(bad.quarantine["reason_code"]) - set(good.quarantine["reason_code"]) <= {"missing_file",
                                                                                         "unexpected_error"}
    # only that file: its chunk-mates' rows are the good run's
    assert set(bad.quarantine["file_key"]) - set(good.quarantine["file_key"]) == {items[1].file_key}
    kept = good.index[good.index["file_key"] != items[1].file_key].reset_index(drop=True)
    pd.testing.assert_frame_equal(bad.index.drop(columns="cache_path"), kept.drop(columns="cache_path"))


def test_a_job_that_raises_inside_a_chunk_on_a_worker_is_the_only_one_in_error(cluster):
    import operator
    from functools import partial

    from distributed import Client

    from curation.fanout import chunk_size, map_jobs

    jobs = [4, 2, 0, 1] * 10
    assert chunk_size(len(jobs), 2, 0.01) == 5  # chunks of 5: every chunk holds a failing job
    with Client(cluster, set_as_default=False) as client:
        out = map_jobs(partial(operator.truediv, 1.0), jobs, executor=client.get_executor(), job_s=0.01,
                       on_error=lambda job, exc: ("quarantine", job, type(exc).__name__))
    assert [o for o in out if isinstance(o, tuple)] == [("quarantine", 0, "ZeroDivisionError")] * 10
    assert [o for o in out if not isinstance(o, tuple)] == [1.0 / j for j in jobs if j]


def test_our_local_cluster_workers_run_without_dasks_malloc_trim_threshold(cluster):
    from distributed import Client

    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ  # the nanny's own environment would win
    with Client(cluster, set_as_default=False) as client:
        seen = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_", "unset"))
    assert len(seen) == 2 and set(seen.values()) == {"unset"}


def test_the_dask_executors_own_local_cluster_starts_workers_without_dasks_malloc_trim_threshold():
    from distributed import Client

    from pipelines.dask_executor import MammoDaskExecutor, start_local_cluster
    from pipelines.executors import dask_run_config

    local = dask_run_config(workers=1)["execution"]["config"]["dask"]["cluster"]["local"]
    cluster = start_local_cluster(**MammoDaskExecutor("local", local).build_dict("batch_job"))
    try:
        with Client(cluster, set_as_default=False) as client:
            seen = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_", "unset"))
    finally:
        cluster.close()
    assert list(seen.values()) == ["unset"]
