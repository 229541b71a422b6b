"""``dask`` resource: per-image fan-out inside an asset (cataloguing, preprocessing) on a Dask cluster.

With no address (the default; or ``$MAMMO_DASK_ADDRESS`` unset) the assets use their local process
pool of ``workers``. With an address, every file of the batch is one task on that cluster through
``distributed.Client.get_executor()``; results come back in input order, so the tables are the same
bytes as with the local pool, and a file whose task fails (or whose worker dies) is quarantined
with a reason while the batch goes on. The workers need this package installed and the batch's
files at the same path (shared storage), as for the Dask executor.
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
