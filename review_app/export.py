"""Decisions -> ``labels/adjudications.parquet`` (columns fixed in docs/CONTRACTS.md).

Every decision is exported, skips included: the file is the audit trail, and the label
side (``label_mining/adjudication.py``) picks the effective decision per (target_key, task)
— the latest non-skip one. Rows are ordered by the database id (the order decisions were
committed), so the same database always gives a byte-identical file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from curation.parquet_io import write_frame
from curation.schemas import ADJUDICATIONS_SCHEMA
from review_app.storage import Decision

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
    """The decision in force per (target_level, target_key, task): the latest non-skip one that
    was not undone (an ``undo`` row cancels the decision named in its ``reverts``)."""
    undone = set(frame["reverts"].dropna()) if "reverts" in frame.columns else set()
    decided = frame[~frame["decision"].isin(["skip", "undo"]) & ~frame["decision_id"].isin(undone)]
    return decided.drop_duplicates(["target_level", "target_key", "task"], keep="last").reset_index(drop=True)
