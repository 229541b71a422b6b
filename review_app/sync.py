"""Load the review queue (``labels/review_queue.parquet``) into the app database.

Items are matched by ``item_key`` so a re-built queue never duplicates work: new items are
added, known ones get the new proposal and priority, and open items that left the queue are
deactivated (kept, because decisions point at them). Decided items stay as they are: they left
the queue *because* they were decided, and they still count in the progress. When the proposal of an open item
changes, its version is bumped so an annotator looking at the old proposal gets a conflict
instead of confirming a label that no longer exists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from review_app.queue import QUEUE_COLUMNS
from review_app.storage import QueueItem, utcnow

_PROPOSAL_FIELDS = ("proposed_label", "proposed_u", "source", "rule_id", "evidence")


@dataclass(frozen=True)
class SyncResult:
    added: int
    updated: int
    deactivated: int
    active: int


def _clean(value):
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalar -> python
        return value.item()
    return value


def sync_queue(session: Session, queue: pd.DataFrame) -> SyncResult:
    missing = [c for c in QUEUE_COLUMNS if c not in queue.columns]
    if missing:
        raise ValueError(f"review queue lacks column(s) {missing}: rebuild it with the review_queue asset")
    now = utcnow()
    existing = {item.item_key: item for item in session.scalars(select(QueueItem))}
    seen: set[str] = set()
    added = updated = 0
    for rec in queue[QUEUE_COLUMNS].to_dict("records"):
        rec = {k: _clean(v) for k, v in rec.items()}
        values = {
            "priority": int(rec["priority"]), "target_level": rec["target_level"],
            "target_key": rec["target_key"], "task": rec["task"], "batch": rec["batch"],
            "breast_key": rec["breast_key"], "accession_key": rec["accession_key"],
            "proposed_label": rec["label"], "proposed_u": rec["u"], "source": rec["source"],
            "rule_id": rec["rule_id"], "evidence": rec["evidence"], "span_start": rec["span_start"],
            "span_end": rec["span_end"], "report_row": rec["report_row"],
            "related_spans": rec["related_spans"] or "[]", "reasons": rec["reasons"], "model_label": rec["model_label"],
            "model_p_label": rec["model_p_label"], "images_json": rec["images_json"] or "[]",
        }
        seen.add(rec["item_key"])
        item = existing.get(rec["item_key"])
        if item is None:
            session.add(QueueItem(item_key=rec["item_key"], active=True, status="open",
                                  current_label=values["proposed_label"], current_u=values["proposed_u"],
                                  version=0, synced_at=now, **values))
            added += 1
            continue
        proposal_changed = any(getattr(item, f) != values[f] for f in _PROPOSAL_FIELDS)
        changes = dict(values, active=True, synced_at=now)
        if item.status == "open" and proposal_changed:
            changes.update(current_label=values["proposed_label"], current_u=values["proposed_u"])
        # conditional on the version we read, so a decision landing meanwhile is never overwritten
        stmt = update(QueueItem).where(QueueItem.id == item.id, QueueItem.version == item.version)
        if proposal_changed and item.status == "open":
            changes["version"] = item.version + 1
        result = session.execute(stmt.values(**changes).execution_options(synchronize_session=False))
        if result.rowcount == 1:
            updated += 1
        else:  # decided while syncing: keep the decision, refresh only the queue fields
            session.execute(update(QueueItem).where(QueueItem.id == item.id)
                            .values(priority=values["priority"], reasons=values["reasons"], active=True,
                                    synced_at=now).execution_options(synchronize_session=False))
            updated += 1
    gone = [item.id for key, item in existing.items()
            if key not in seen and item.active and item.status == "open"]
    if gone:
        session.execute(update(QueueItem).where(QueueItem.id.in_(gone), QueueItem.status == "open")
                        .values(active=False)
                        .execution_options(synchronize_session=False))
    session.flush()
    return SyncResult(added=added, updated=updated, deactivated=len(gone), active=len(seen))
