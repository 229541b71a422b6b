"""``make scale-check``: the per-batch job on PostgreSQL + a 2-worker Dask cluster, compared byte for
byte with the same job run in one process.

Starts a throw-away PostgreSQL server and a ``distributed.LocalCluster`` (both on 127.0.0.1), writes a
small synthetic demo batch, runs ``batch_pipeline`` for it twice into two data roots — in-process on
an ephemeral instance (the reference), then on the Dask cluster with run/event/schedule storage on the
PostgreSQL server — compares every file the job wrote, stops everything and prints one JSON line::

    {"executor": "dask", "storage": "postgres", "workers": 2, "identical": true, "files": 13, "seconds": 41.2}

Exit status 0 only when the run succeeded and the outputs are identical.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from curation.home import MammoHome

OUTPUT_DIRS = ("catalog", "labels", "cache")   # what the per-batch job writes under MAMMO_HOME
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def make_demo_batch(home: MammoHome, batch: str = "hmi", *, patients: int = 4, height: int = 256,
                    seed: int = 0) -> Path:
    from curation.demo_cohort import generate_cohort

    out = home.batch_root(batch)
    generate_cohort(batch.split("__")[0], patients, seed, out, height=height)
    return out


def copy_inputs(source: MammoHome, target: MammoHome) -> None:
    shutil.copytree(source.cohorts, target.cohorts, dirs_exist_ok=True)


def output_digests(home: MammoHome) -> dict[str, str]:
    """sha256 of every file the per-batch job wrote, by path relative to the data root."""
    found = {}
    for name in OUTPUT_DIRS:
        for path in sorted((home.root / name).rglob("*")):
            if path.is_file():
                found[str(path.relative_to(home.root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def job_run_config(home: MammoHome, execution: dict | None = None) -> dict:
    """Run config naming the data root explicitly, so Dask workers need no environment of ours."""
    config = {"resources": {"mammo": {"config": {"root": str(home.root)}}}, **QUIET}
    return {**config, **(execution or {})}


def run_in_process(home: MammoHome, batch: str, instance=None):
    import dagster as dg

    from pipelines.definitions import BATCH_JOB, defs
    from pipelines.partitions import batch_partitions

    instance = instance or dg.DagsterInstance.ephemeral()
    if not instance.has_dynamic_partition(batch_partitions.name, batch):
        instance.add_dynamic_partitions(batch_partitions.name, [batch])
    return defs.resolve_job_def(BATCH_JOB).execute_in_process(
        partition_key=batch, instance=instance, run_config=job_run_config(home), raise_on_error=False)


def run_on_dask(home: MammoHome, batch: str, instance, address: str | None = None, workers: int = 2):
    from pipelines.executors import dask_run_config, run_batch_job

    return run_batch_job(batch, instance, job_run_config(home, dask_run_config(address, workers=workers)))


def failure_messages(result) -> list[str]:
    out = []
    for event in result.all_events:
        if event.is_failure and event.event_specific_data is not None:
            error = getattr(event.event_specific_data, "error", None)
            if error is not None:
                out.append(f"{event.step_key}: {error.message.strip()[:500]}")
    return out


def compare(reference: dict[str, str], other: dict[str, str]) -> list[str]:
    """Paths missing on one side or with different bytes (empty when identical)."""
    return sorted(p for p in reference.keys() | other.keys() if reference.get(p) != other.get(p))


def scale_check(workers: int = 2, patients: int = 4, height: int = 256, batch: str = "hmi") -> dict:
    import dagster as dg

    from pipelines.instance import PG_URL_ENV, ensure_instance
    from pipelines.local_services import local_dask_cluster, throwaway_postgres

    start = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="mammo-scale-check-"))
    saved = {k: os.environ.get(k) for k in ("DAGSTER_HOME", PG_URL_ENV)}
    try:
        reference, scaled = MammoHome(root / "in_process").ensure(), MammoHome(root / "dask").ensure()
        make_demo_batch(reference, batch, patients=patients, height=height)
        copy_inputs(reference, scaled)
        local = run_in_process(reference, batch)
        with throwaway_postgres() as pg_url:
            # before the cluster starts: workers read the instance's storage URL from this variable
            os.environ["DAGSTER_HOME"] = str(scaled.dagster)
            os.environ[PG_URL_ENV] = pg_url
            dagster_home = ensure_instance(scaled)
            with local_dask_cluster(workers) as address, dg.DagsterInstance.from_config(str(dagster_home)) as instance:
                storage = type(instance.run_storage).__name__
                result = run_on_dask(scaled, batch, instance, address)
                ok = result.success
                errors = failure_messages(result)
        diff = compare(output_digests(reference), output_digests(scaled))
        return {"executor": "dask", "storage": "postgres" if "Postgres" in storage else storage,
                "workers": workers, "identical": ok and local.success and not diff,
                "files": len(output_digests(reference)), "differing": diff[:10], "errors": errors[:5],
                "seconds": round(time.perf_counter() - start, 1)}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    report = scale_check(workers=int(os.environ.get("SCALE_WORKERS", "2")))
    print(json.dumps(report))
    return 0 if report["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
