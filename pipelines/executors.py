"""One executor for every job, chosen per run by config: in-process, multiprocess (Dagster's default),
Dask, or Kubernetes (one pod per step, with dagster-k8s; see deploy/k8s/).

.. code-block:: yaml

    execution:
      config:
        dask:
          cluster:
            local: {n_workers: 2, threads_per_worker: 1}    # a LocalCluster started for this run
            # or: existing: {address: "tcp://scheduler:8786"}

Dask execution needs the ``scale`` extra (``dagster-dask``, ``distributed``), a persistent instance
(DAGSTER_HOME, SQLite or PostgreSQL) and a reconstructable job: the Dagster UI/daemon runs give one;
from Python use :func:`run_batch_job` (or ``dg.execute_job(dg.reconstructable(batch_job), …)``).
Each step runs as one Dask task on a worker, which rebuilds the code location from this package, so
the workers need the same code and the same ``MAMMO_HOME`` (shared storage) as the submitting process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dagster as dg
from dagster._core.definitions.executor_definition import ExecutorRequirement, multiple_process_executor_requirements

DASK_MISSING = "the dask executor needs the 'scale' extra: pip install -e '.[scale]' (dagster-dask, distributed)"

DASK_CONFIG = {
    "cluster": dg.Field(
        dg.Selector({
            "local": dg.Field(dg.Permissive(), description="distributed.LocalCluster keyword arguments "
                              "(n_workers, threads_per_worker, ...); started and stopped with the run"),
            "existing": dg.Field({"address": dg.Field(dg.StringSource, description="scheduler address, "
                                                      "e.g. tcp://10.0.0.5:8786")},
                                 description="a running Dask scheduler"),
        }),
        is_required=False, default_value={"local": {}},
    ),
}


def _k8s_executor():
    """dagster-k8s' step-per-pod executor when installed (the ``scale`` extra), else None."""
    try:
        from dagster_k8s import k8s_job_executor
    except ImportError:
        return None
    return k8s_job_executor


def _choices() -> dict:
    choices = {
        "multiprocess": dg.multiprocess_executor.config_schema.as_field(),
        "in_process": dg.in_process_executor.config_schema.as_field(),
        "dask": dg.Field(DASK_CONFIG),
    }
    k8s = _k8s_executor()
    if k8s is not None:   # each step in its own Kubernetes Job; needs the K8sRunLauncher (deploy/k8s/)
        choices["k8s"] = k8s.config_schema.as_field()
    return choices


def _requirements(executor_config: Mapping[str, object]) -> Sequence[ExecutorRequirement]:
    return [] if "in_process" in executor_config else multiple_process_executor_requirements()


@dg.executor(
    name="mammo_executor",
    config_schema=dg.Field(
        dg.Selector(_choices()),
        default_value={"multiprocess": {}},
    ),
    requirements=_requirements,
)
def mammo_executor(init_context: dg.InitExecutorContext):
    """multiprocess (default, as Dagster's own default executor), in_process, dask, or k8s."""
    ((kind, config),) = init_context.executor_config.items()
    if kind == "dask":
        try:
            from pipelines.dask_executor import MammoDaskExecutor
        except ImportError as exc:
            raise dg.DagsterInvalidConfigError(DASK_MISSING, [], None) from exc
        ((cluster_type, cluster_config),) = dict(config.get("cluster") or {"local": {}}).items()
        return MammoDaskExecutor(cluster_type, cluster_config)
    target = {"multiprocess": dg.multiprocess_executor, "in_process": dg.in_process_executor}.get(kind) \
        or _k8s_executor()
    return target.executor_creation_fn(dg.InitExecutorContext(
        job=init_context.job, executor_def=target, executor_config=config, instance=init_context.instance))


def dask_run_config(address: str | None = None, *, workers: int = 2, threads_per_worker: int = 1) -> dict:
    """``execution`` run config for the dask executor: an existing scheduler, or a LocalCluster on 127.0.0.1."""
    cluster = ({"existing": {"address": address}} if address else
               {"local": {"n_workers": workers, "threads_per_worker": threads_per_worker,
                          "host": "127.0.0.1", "dashboard_address": None, "processes": True}})
    return {"execution": {"config": {"dask": {"cluster": cluster}}}}


def batch_job() -> dg.JobDefinition:
    """The per-batch job, loadable by module path (``dg.reconstructable(batch_job)``) in other processes."""
    from pipelines.definitions import BATCH_JOB, defs

    return defs.resolve_job_def(BATCH_JOB)


def run_batch_job(batch: str, instance: dg.DagsterInstance, run_config: Mapping | None = None) -> dg.ExecutionResult:
    """Run the per-batch job for ``batch`` with the job's executor as configured (out of process)."""
    from pipelines.partitions import batch_partitions

    if not instance.has_dynamic_partition(batch_partitions.name, batch):
        instance.add_dynamic_partitions(batch_partitions.name, [batch])
    return dg.execute_job(dg.reconstructable(batch_job), instance, run_config=dict(run_config or {}),
                          tags={"dagster/partition": batch})
