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
        "concurrency": {"runs": {"max_concurrent_runs": 2}, "pools": {"default_limit": 1}},
        "telemetry": {"enabled": False},
    }


def ensure_instance(home: MammoHome) -> Path:
    """Write ``dagster.yaml`` (if missing) under DAGSTER_HOME and export DAGSTER_HOME; return it."""
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or home.dagster).resolve()
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(yaml.safe_dump(dagster_yaml(dagster_home), sort_keys=False))
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dagster_home
