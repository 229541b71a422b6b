"""The local lookup from pseudonymous file keys to the raw relative paths (PHI).

Tables and Dagster metadata carry only ``file_key`` (:func:`curation.pseudonym.file_key`); an
engineer who must find the file on disk reads ``$MAMMO_HOME/private/file_keys/<batch>.parquet``
(or ``<out>/private/file_keys.parquet`` for the standalone CLI). ``rel_path`` is the exact bytes
of the name (lossless for non-UTF-8 names); ``rel_path_text`` is a display form. The PHI audit
skips ``private/`` like ``cohorts/``: both hold identifying inputs by design.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from curation.parquet_io import write_frame
from curation.schemas import FILE_KEYS_SCHEMA

LOOKUP_SCHEMA = FILE_KEYS_SCHEMA
PRIVATE_DIR = "private"


def lookup_path(home_root: Path, batch: str) -> Path:
    return Path(home_root) / PRIVATE_DIR / "file_keys" / f"{batch}.parquet"


def lookup_frame(rows: list[tuple[str, str, bytes]]) -> pd.DataFrame:
    """rows: (file_key, batch, rel bytes)."""
    data = [{"file_key": k, "batch": b, "rel_path": bytes(r), "rel_path_text": r.decode("utf-8", "backslashreplace")}
            for k, b, r in sorted(set(rows))]
    return pa.Table.from_pylist(data, schema=LOOKUP_SCHEMA).to_pandas()


def write_lookup(df: pd.DataFrame, path: Path) -> None:
    write_frame(df, LOOKUP_SCHEMA, path)


def read_lookup(path: Path) -> dict[str, bytes]:
    """file_key -> relative path bytes."""
    df = pd.read_parquet(path)
    return dict(zip(df["file_key"], df["rel_path"]))
