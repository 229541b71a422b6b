"""``dask`` resource: per-image fan-out inside an asset (cataloguing, preprocessing) on a Dask cluster.

With no address (the default; or ``$MAMMO_DASK_ADDRESS`` unset) the assets use their local process
pool of ``workers``. With an address, the batch's files go to that cluster in chunks (~0.1 s of work
per task, at least 4 tasks per worker thread; ``curation.fanout``) through
``distributed.Client.get_executor()``; results come back in input order, so the tables are the same
bytes as with the local pool, and a file whose job fails (or whose worker dies) is quarantined
with a reason while the batch goes on — its chunk-mates are re-run alone, not lost. The workers need
this package installed and the batch's files at the same path (shared storage), as for the Dask
executor. Start them without Dask's default ``MALLOC_TRIM_THRESHOLD_=65536`` (set
``distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_: null`` in their Dask config, as
``pipelines.local_services.local_dask_cluster`` does): it doubled the workers' preprocessing CPU at
1024-px images (bench/README_scale.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager

import dagster as dg
from pydantic import Field

ADDRESS_ENV = "MAMMO_DASK_ADDRESS"


class DaskResource(dg.ConfigurableResource):
    """Where per-image work of one asset goes: a Dask scheduler, or this machine's process pool."""

    address: str = Field(default="", description=f"Dask scheduler address (tcp://host:8786); empty means "
                                                 f"${ADDRESS_ENV}, and when that is unset the local process pool")

    def resolved_address(self) -> str:
        return self.address or os.environ.get(ADDRESS_ENV, "")

    def describe(self) -> str:
        address = self.resolved_address()
        return f"dask {address}" if address else "local pool"

    @contextmanager
    def executor(self) -> Iterator[Executor | None]:
        """A ``concurrent.futures.Executor`` on the cluster, or None (= the caller's local pool)."""
        address = self.resolved_address()
        if not address:
            yield None
            return
        try:
            from distributed import Client
        except ImportError as exc:
            raise RuntimeError("resource 'dask' has an address but distributed is not installed: "
                               "pip install -e '.[scale]'") from exc
        with Client(address, set_as_default=False, timeout="30s") as client:
            yield client.get_executor()
