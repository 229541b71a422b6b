"""Decisions -> ``labels/adjudications.parquet`` (columns fixed in docs/CONTRACTS.md).

Every decision is exported, skips included: the file is the audit trail, and the label
side (``label_mining/adjudication.py``) picks the effective decision per (target_key, task)
— the latest non-skip one. Rows are ordered by the database id (the order decisions were
committed), so the same database always gives a byte-identical file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from curation.parquet_io import write_frame
from review_app.storage import Decision

ADJUDICATIONS_SCHEMA = pa.schema([
    ("decision_id", pa.string()),
    ("target_level", pa.string()),
    ("target_key", pa.string()),
    ("task", pa.string()),
    ("decision", pa.string()),
    ("label", pa.string()),
    ("annotator", pa.string()),
    ("decided_at", pa.timestamp("us", tz="UTC")),
    ("previous_label", pa.string()),
    ("previous_u", pa.float64()),
    ("app_version", pa.string()),
])
ADJUDICATION_COLUMNS = ADJUDICATIONS_SCHEMA.names


def decisions_frame(session: Session) -> pd.DataFrame:
    rows = session.execute(select(*(getattr(Decision, c) for c in ADJUDICATION_COLUMNS))
                           .order_by(Decision.id)).all()
    frame = pd.DataFrame(rows, columns=ADJUDICATION_COLUMNS)
    frame["decided_at"] = pd.to_datetime(frame["decided_at"]).dt.tz_localize("UTC")
    frame["previous_u"] = frame["previous_u"].astype("float64")
    return frame


def write_adjudications(frame: pd.DataFrame, path: Path) -> Path:
    """Write atomically (temp file + rename) so a reader never sees half a file."""
    return write_frame(frame[ADJUDICATION_COLUMNS], ADJUDICATIONS_SCHEMA, path)


def effective_decisions(frame: pd.DataFrame) -> pd.DataFrame:
    """The decision in force per (target_level, target_key, task): the latest non-skip one."""
    decided = frame[frame["decision"] != "skip"]
    return decided.drop_duplicates(["target_level", "target_key", "task"], keep="last").reset_index(drop=True)
