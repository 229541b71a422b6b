"""dagster-dask's executor, with three fixes found running it here (dagster-dask 0.29.27, dask 2026.8):

1. ``Client.submit`` walks tuple arguments looking for futures; Dagster's records (the run, its
   partition subset) are tuples that forbid iteration, so upstream fails before the first step with
   ``Exception: Iteration is not allowed on `@record` KeyRangesPartitionsSubset``. The step's
   arguments travel here in an opaque box instead.
2. Task keys carry the run id, so two runs of one job on a long-lived scheduler never share keys.
3. A ``local`` cluster started for the run is closed when the run ends, and its workers start without
   Dask's ``MALLOC_TRIM_THRESHOLD_`` (:data:`pipelines.local_services.WORKER_ENVIRON`), as ours do.

Each step is still one Dask task that rebuilds the job on the worker and runs that step against the
run's (persistent) instance, exactly as upstream; imported only when a run asks for the dask executor.
"""

from __future__ import annotations

import dask.distributed
from dagster._core.errors import raise_execution_interrupts
from dagster._core.events import DagsterEvent
from dagster._utils import iterate_with_context
from dagster_dask.executor import DaskExecutor, get_dask_resource_requirements, query_on_dask_worker

from pipelines.local_services import start_local_cluster


class _Opaque:
    """A value Dask's argument parser does not look into (it recurses into tuples, lists, dicts)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return (_Opaque, (self.value,))


def _run_step(dependencies, packed: _Opaque) -> list[DagsterEvent]:
    # ``dependencies`` (upstream steps' futures) only sequences the tasks
    return list(query_on_dask_worker(dependencies, *packed.value))


class MammoDaskExecutor(DaskExecutor):
    def execute(self, plan_context, execution_plan):
        if not plan_context.instance.is_persistent:
            raise RuntimeError("Dask execution requires a persistent DagsterInstance (set DAGSTER_HOME)")
        if self.cluster_type not in ("local", "existing"):
            raise ValueError(f"cluster type {self.cluster_type!r}: this executor supports 'local' and 'existing'")
        job_name, run = plan_context.job_name, plan_context.dagster_run
        instance_ref = plan_context.instance.get_ref()
        cluster = None
        if self.cluster_type == "local":
            cluster = start_local_cluster(**self.build_dict(job_name))
        try:
            with dask.distributed.Client(cluster or self.cluster_configuration["address"]) as client:
                futures, by_step = [], {}
                for level in execution_plan.get_steps_to_execute_by_level():
                    for step in level:
                        deps = [by_step[key] for inp in step.step_inputs for key in inp.dependency_keys]
                        packed = _Opaque((plan_context.reconstructable_job, run, plan_context.run_config,
                                          [step.key], instance_ref, execution_plan.known_state))
                        future = client.submit(_run_step, deps, packed, key=f"{job_name}.{run.run_id}.{step.key}",
                                               resources=get_dask_resource_requirements(step.tags))
                        futures.append(future)
                        by_step[step.key] = future
                done = dask.distributed.as_completed(futures, with_results=True)
                for _future, events in iterate_with_context(raise_execution_interrupts, done):
                    yield from events
        finally:
            if cluster is not None:
                cluster.close()
