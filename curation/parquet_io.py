"""The one way tables are written: deterministic bytes, atomically.

Deterministic: fixed schema (no pandas index or pandas metadata, which embeds library versions),
fixed compression and page options, so identical rows give byte-identical files (manifests and
catalogues are compared by hash). Atomic: written to a temporary file in the same folder and
renamed, so a reader (the review app, a sensor, DuckDB) never sees half a file and a crash
leaves the previous version intact.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def write_arrow(table: pa.Table, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd", compression_level=3, use_dictionary=True,
                       write_statistics=True, row_group_size=1 << 20, data_page_version="2.0")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_frame(frame: pd.DataFrame, schema: pa.Schema, path: str | os.PathLike) -> Path:
    """Write ``frame`` with exactly ``schema`` (its columns, in its order, its types)."""
    table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    return write_arrow(table.replace_schema_metadata(schema.metadata), path)
