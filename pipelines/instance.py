"""The persistent Dagster instance used by ``make demo`` and ``make ui`` (``$MAMMO_HOME/dagster``).

Storage is SQLite under DAGSTER_HOME by default, or PostgreSQL (package ``dagster-postgres``, the
``scale`` extra) for runs, event logs and schedules/sensor ticks:

- ``mammo-mtl instance-init --postgres-url postgresql://user:pass@host:5432/db`` writes the URL into
  ``dagster.yaml`` (mode 0600; the psycopg2 driver named: ``postgresql+psycopg2://``), or
- ``MAMMO_DAGSTER_PG_URL=postgresql+psycopg2://…`` in the environment: ``dagster.yaml`` then only names
  the variable (``postgres_url: {env: MAMMO_DAGSTER_PG_URL}``), so the password never lands in a file.

Once a managed ``dagster.yaml`` points at PostgreSQL it stays there: a later ``make demo`` without
the URL keeps the storage it finds rather than switching back to SQLite.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from curation.home import MammoHome

PG_URL_ENV = "MAMMO_DAGSTER_PG_URL"
# dagster-postgres speaks psycopg2; SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, with which
# dagster-postgres fails (NOTIFY with a bound parameter), so the driver is always named
PG_DRIVER_SCHEME = "postgresql+psycopg2"
PG_SCHEMES = ("postgresql", "postgres", PG_DRIVER_SCHEME)
MANAGED_HEADER = "# managed by mammo-mtl (delete this line to keep your own edits)\n"


class InstanceConfigError(ValueError):
    """A dagster.yaml cannot be written as asked; the message names the option or file to fix."""


def check_postgres_url(url: str, source: str = "--postgres-url") -> str:
    """The URL with the psycopg2 driver named (``postgresql+psycopg2://``), or an error naming
    ``source`` when it is not a usable PostgreSQL URL."""
    parts = urlsplit(url)
    if parts.scheme not in PG_SCHEMES:
        raise InstanceConfigError(f"{source}: scheme {parts.scheme or '(none)'!r} is not PostgreSQL; expected "
                                  f"postgresql://user:password@host:5432/dbname")
    if not parts.path.strip("/"):
        raise InstanceConfigError(f"{source}: no database name after the host (…/dbname)")
    if not parts.hostname and "host=" not in parts.query:
        raise InstanceConfigError(f"{source}: no host (…@host:5432/… or ?host=/unix/socket/dir)")
    return PG_DRIVER_SCHEME + url[len(parts.scheme):]


def postgres_storage(url: str | None = None, *, env_var: str = PG_URL_ENV) -> dict:
    """``storage:`` section for PostgreSQL: the URL itself, or a reference to ``env_var``."""
    return {"postgres": {"postgres_url": url if url else {"env": env_var}}}


def sqlite_storage(dagster_home: Path) -> dict:
    return {"sqlite": {"base_dir": str(dagster_home / "storage")}}


def dagster_yaml(dagster_home: Path, storage: dict | None = None) -> dict:
    return {
        # run, event-log and schedule storage together: SQLite files by default, PostgreSQL to scale out
        "storage": storage or sqlite_storage(dagster_home),
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


def storage_kind(dagster_home: Path) -> str:
    """"postgres" or "sqlite" (or "custom") as configured in ``dagster_home/dagster.yaml``."""
    config = Path(dagster_home) / "dagster.yaml"
    if not config.exists():
        return "sqlite"
    storage = (yaml.safe_load(config.read_text()) or {}).get("storage") or {}
    return next(iter(storage), "sqlite") if len(storage) == 1 else "custom"


def _chosen_storage(dagster_home: Path, existing: dict | None, postgres_url: str | None) -> dict:
    if postgres_url:
        return postgres_storage(check_postgres_url(postgres_url))
    env_url = os.environ.get(PG_URL_ENV)
    if env_url:
        if check_postgres_url(env_url, source=f"${PG_URL_ENV}") != env_url:
            # dagster reads the variable itself at every start, so it must name the driver already
            raise InstanceConfigError(f"${PG_URL_ENV}: write it as {PG_DRIVER_SCHEME}://… (dagster-postgres "
                                      f"needs the psycopg2 driver; SQLAlchemy 2.1 reads postgresql:// as psycopg 3)")
        return postgres_storage(env_var=PG_URL_ENV)
    kept = (existing or {}).get("storage") or {}
    if "postgres" in kept:           # chosen earlier: never silently fall back to SQLite
        return kept
    return sqlite_storage(dagster_home)


def ensure_instance(home: MammoHome, *, postgres_url: str | None = None) -> Path:
    """Write ``dagster.yaml`` under DAGSTER_HOME (unless a user took it over) and export DAGSTER_HOME."""
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or home.dagster).resolve()
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    managed = not config.exists() or config.read_text().startswith(MANAGED_HEADER)
    if managed:
        existing = yaml.safe_load(config.read_text()) if config.exists() else None
        storage = _chosen_storage(dagster_home, existing, postgres_url)
        config.write_text(MANAGED_HEADER + yaml.safe_dump(dagster_yaml(dagster_home, storage), sort_keys=False))
        if postgres_url:
            config.chmod(0o600)      # the URL may hold a password
    elif postgres_url:
        raise InstanceConfigError(f"{config} is not managed by mammo-mtl (no header line); set "
                                  f"storage: postgres: postgres_url there yourself, or delete the file")
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dagster_home
