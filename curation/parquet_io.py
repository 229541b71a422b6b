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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` (one rename), on an
    exception it is deleted and ``path`` keeps its previous content. A SIGKILL leaves at most a
    hidden ``.<name>.*.tmp`` file beside an intact ``path``. For any writer that takes a path:

        with atomic_path(out / "summary.json") as tmp:
            tmp.write_text(json.dumps(summary))
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """CSV / JSON / Markdown / any text: written whole or not at all."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


PARQUET_OPTIONS = dict(compression="zstd", compression_level=3, use_dictionary=True, write_statistics=True,
                       data_page_version="2.0")


def write_arrow(table: pa.Table, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=1 << 20, **PARQUET_OPTIONS)
    return Path(path)


def write_frame(frame: pd.DataFrame, schema: pa.Schema, path: str | os.PathLike) -> Path:
    """Write ``frame`` with exactly ``schema`` (its columns, in its order, its types)."""
    table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    return write_arrow(table.replace_schema_metadata(schema.metadata), path)
