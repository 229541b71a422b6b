"""The persistent Dagster instance used by ``make demo`` and ``make ui`` (``$MAMMO_HOME/dagster``)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from curation.home import MammoHome


def dagster_yaml(dagster_home: Path) -> dict:
    return {
        # SQLite by default; point these at Postgres (dagster-postgres) to scale out
        "storage": {"sqlite": {"base_dir": str(dagster_home / "storage")}},
        "local_artifact_storage": {"module": "dagster._core.storage.root", "class": "LocalArtifactStorage",
                                   "config": {"base_dir": str(dagster_home)}},
        "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"},
        # two runs at once on a laptop; at most one asset in the "training" pool (TensorFlow) at a time
        # granularity "run": the queue holds a second training run back; op granularity would make an
        # in-process retry of a failed training step wait forever on the slot its own run holds
        "concurrency": {"runs": {"max_concurrent_runs": 2},
                        "pools": {"default_limit": 1, "granularity": "run"}},
        "telemetry": {"enabled": False},
    }


MANAGED_HEADER = "# managed by mammo-mtl (delete this line to keep your own edits)\n"


def ensure_instance(home: MammoHome) -> Path:
    """Write ``dagster.yaml`` under DAGSTER_HOME (unless a user took it over) and export DAGSTER_HOME."""
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or home.dagster).resolve()
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists() or config.read_text().startswith(MANAGED_HEADER):
        config.write_text(MANAGED_HEADER + yaml.safe_dump(dagster_yaml(dagster_home), sort_keys=False))
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dagster_home
