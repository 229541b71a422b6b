"""The Dagster code location.

Every module in ``assets/`` that exposes ``defs`` (a ``dagster.Definitions`` with assets, checks,
jobs, sensors — never resources) is merged here, in module-name order, with the shared
resources. Adding an area means adding one module. Two jobs are derived from the graph itself so
they grow with it: ``batch_pipeline`` (every asset partitioned by ingestion batch) and
``curate_and_train`` (every unpartitioned asset: manifests, review queue, models, evaluation).
"""

import importlib
import pkgutil

import dagster as dg

import assets as _assets
from pipelines.executors import mammo_executor
from pipelines.partitions import batch_partitions
from pipelines.resources import MammoHomeResource, default_resources

BATCH_JOB = "batch_pipeline"
DOWNSTREAM_JOB = "curate_and_train"


def _area_definitions() -> list[dg.Definitions]:
    found = []
    for info in sorted(pkgutil.iter_modules(_assets.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{_assets.__name__}.{info.name}")
        area = getattr(module, "defs", None)
        if isinstance(area, dg.Definitions):
            found.append(area)
    return found


def split_keys_by_partitioning(areas: dg.Definitions) -> tuple[list[dg.AssetKey], list[dg.AssetKey]]:
    """(keys partitioned by batch, unpartitioned keys), each sorted for a stable job definition."""
    partitioned, unpartitioned = [], []
    for item in areas.assets or []:
        if not isinstance(item, dg.AssetsDefinition):
            continue
        for key in item.keys:
            (partitioned if item.partitions_def == batch_partitions else unpartitioned).append(key)
    order = lambda k: k.to_user_string()  # noqa: E731
    return sorted(partitioned, key=order), sorted(unpartitioned, key=order)


@dg.sensor(job_name=BATCH_JOB, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Adds a partition for each new batch folder under $MAMMO_HOME/cohorts and runs its pipeline.")
def new_batch_sensor(context: dg.SensorEvaluationContext, mammo: MammoHomeResource):
    known = set(context.instance.get_dynamic_partitions(batch_partitions.name))
    new = [b for b in mammo.home().batches() if b not in known]
    if not new:
        return dg.SkipReason("no new batch folder under cohorts/")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=b, run_key=f"batch-{b}") for b in new],
        dynamic_partitions_requests=[batch_partitions.build_add_request(new)],
    )


def build_definitions(root: str = "") -> dg.Definitions:
    areas = dg.Definitions.merge(*_area_definitions())
    partitioned, unpartitioned = split_keys_by_partitioning(areas)
    jobs = [dg.define_asset_job(BATCH_JOB, selection=dg.AssetSelection.assets(*partitioned),  # partitions inferred
                                description="Everything one ingestion batch needs: catalogue, labels, preprocessing.")]
    if unpartitioned:
        jobs.append(dg.define_asset_job(
            DOWNSTREAM_JOB, selection=dg.AssetSelection.assets(*unpartitioned),
            description="Cross-batch work: manifests and checks, review queue, training, evaluation."))
    return dg.Definitions.merge(
        areas,
        dg.Definitions(jobs=jobs, sensors=[new_batch_sensor], resources=default_resources(root),
                       executor=mammo_executor),  # multiprocess by default; in_process, dask or k8s by run config
    )


defs = build_definitions()
