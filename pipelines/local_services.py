"""Throw-away services on 127.0.0.1 for ``make scale-check`` and the scale tests: a PostgreSQL
server (Debian's binaries, run as the ``postgres`` user when we are root, since the server refuses
root) and a Dask ``LocalCluster``. Each is a context manager that stops what it started."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / name).exists():
            return str(base / name)
    return None


def postgres_unavailable() -> str | None:
    """Why a throw-away PostgreSQL cannot be started here, or None when it can."""
    if pg_bin("initdb") is None or pg_bin("pg_ctl") is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) not installed"
    try:
        import dagster_postgres  # noqa: F401
        import psycopg2  # noqa: F401
    except ImportError:
        return "dagster-postgres not installed (pip install -e '.[scale]')"
    if os.geteuid() == 0 and subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
        return "running as root without a 'postgres' system user to start the server"
    return None


def dask_unavailable() -> str | None:
    try:
        import dagster_dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        return "dagster-dask / distributed not installed (pip install -e '.[scale]')"
    return None


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextmanager
def throwaway_postgres(db: str = "dagster") -> Iterator[str]:
    """A fresh PostgreSQL cluster listening on 127.0.0.1 only; yields ``postgresql+psycopg2://postgres@127.0.0.1:PORT/db``.
    Trust authentication: for a process-local, throw-away server only."""
    why = postgres_unavailable()
    if why:
        raise RuntimeError(why)
    initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
    # directly under /tmp: pytest's own tmp folders are private to root, and the server runs as postgres
    root = Path(tempfile.mkdtemp(prefix="mammo-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    port = free_port()
    started = False
    try:
        subprocess.run(_as_postgres([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
                       check=True, capture_output=True)
        subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                                     f"-k {sock} -c listen_addresses=127.0.0.1 -p {port} -F", "start"]),
                       check=True, capture_output=True)
        started = True
        subprocess.run(_as_postgres([pg_bin("createdb") or "createdb", "-h", "127.0.0.1", "-p", str(port),
                                     "-U", "postgres", db]), check=True, capture_output=True)
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/{db}"
    finally:
        if started:
            subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


# Dask's default worker environment sets MALLOC_TRIM_THRESHOLD_=65536 (distributed.nanny.pre-spawn-environ).
# Setting it at all switches off glibc's dynamic mmap threshold, so every large image buffer becomes a fresh mmap
# with fresh page faults: it doubled the workers' preprocessing CPU at 1024-px images (bench/README_scale.md).
# None = not set in the workers (an explicit value in the nanny's own environment still wins, as in Dask).
WORKER_ENVIRON = {"MALLOC_TRIM_THRESHOLD_": None}


@contextmanager
def dask_worker_environ(extra: dict[str, str | None] | None = None) -> Iterator[None]:
    """Dask config for worker processes spawned inside this block: :data:`WORKER_ENVIRON` (+ ``extra``)."""
    import dask

    env = {**WORKER_ENVIRON, **(extra or {})}
    with dask.config.set({f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in env.items()}):
        yield


def start_local_cluster(**kwargs):
    """A ``distributed.LocalCluster(**kwargs)`` whose workers start with :data:`WORKER_ENVIRON` — the one place
    this project creates a LocalCluster (:func:`local_dask_cluster`, the dask executor's ``local`` cluster)."""
    from distributed import LocalCluster

    with dask_worker_environ():  # the nannies read it when they are created, and reuse it on a restart
        return LocalCluster(**kwargs)


@contextmanager
def local_dask_cluster(workers: int = 2, threads_per_worker: int = 1) -> Iterator[str]:
    """A ``distributed.LocalCluster`` of worker processes on 127.0.0.1 (no dashboard, no malloc-trim
    setting in the workers); yields its address."""
    cluster = start_local_cluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                                  host="127.0.0.1", dashboard_address=None, silence_logs=40)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()
