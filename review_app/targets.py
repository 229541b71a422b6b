"""One review item per target (a breast or an image) with all its flagged tasks.

The queue keeps one row per (target, task) — decisions, versions, leases, double reads and the
``adjudications`` export stay per label — but an annotator opens a *target*: its images once, and
every flagged task of it on one page. The queue is ordered so a target's tasks are consecutive
(:func:`review_app.queue.build_queue`: targets by their most urgent task), so "next" hands out a
target's remaining tasks before moving on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from review_app.consensus import DISPUTED, can_adjudicate
from review_app.decisions import QueueFilter
from review_app.queue import REASON_TIER
from review_app.storage import Decision, QueueItem, Read, User


def target_items(session: Session, item: QueueItem) -> list[QueueItem]:
    """Every active queue row of ``item``'s target (``item`` included), most urgent first."""
    return list(session.scalars(
        select(QueueItem).where(QueueItem.target_level == item.target_level,
                                QueueItem.target_key == item.target_key, QueueItem.active.is_(True))
        .order_by(QueueItem.priority, QueueItem.id)))


def still_to_do(session: Session, user: User, items: list[QueueItem]) -> list[QueueItem]:
    """Those of ``items`` that wait for ``user``: open (or disputed, for an adjudicator), neither
    skipped nor read by them."""
    ids = [i.id for i in items]
    if not ids:
        return []
    skipped = set(session.scalars(select(Decision.item_id).where(
        Decision.user_id == user.id, Decision.decision == "skip", Decision.item_id.in_(ids))))
    read = set(session.scalars(select(Read.item_id).where(Read.user_id == user.id, Read.item_id.in_(ids))))
    statuses = ("open", DISPUTED) if can_adjudicate(user) else ("open",)
    return [i for i in items if i.status in statuses and i.id not in skipped and i.id not in read]


def next_task_on_target(session: Session, user: User, item_id: int, where: QueueFilter = QueueFilter()) -> int | None:
    """After a decision on ``item_id``: the next task of the same target that still waits for ``user``
    (within the queue filter), the one after it in priority order first; None when the target is done."""
    item = session.get(QueueItem, item_id)
    if item is None:
        return None
    allowed = set(session.scalars(where.apply(select(QueueItem.id).where(
        QueueItem.target_level == item.target_level, QueueItem.target_key == item.target_key))))
    todo = [i for i in still_to_do(session, user, target_items(session, item)) if i.id != item_id and i.id in allowed]
    after = [i for i in todo if (i.priority, i.id) > (item.priority, item.id)]
    return (after or todo)[0].id if todo else None


@dataclass(frozen=True)
class TargetRow:
    """One queue-page row: a target and its open tasks (most urgent first)."""
    items: tuple[QueueItem, ...]

    @property
    def first(self) -> QueueItem:
        return self.items[0]

    @property
    def reasons(self) -> list[str]:
        """The reasons of all its tasks, most urgent tier first, each once."""
        names = {r for item in self.items for r in item.reasons.split(";") if r}
        return sorted(names, key=lambda r: (REASON_TIER.get(r, 9), r))


def group_by_target(items: list[QueueItem]) -> list[TargetRow]:
    """Queue rows per target, in the order of each target's first (most urgent) row."""
    groups: dict[tuple[str, str], list[QueueItem]] = {}
    for item in items:
        groups.setdefault((item.target_level, item.target_key), []).append(item)
    return [TargetRow(tuple(g)) for g in groups.values()]


def upcoming_targets(session: Session, after: QueueItem | None, n: int, where: QueueFilter = QueueFilter()
                     ) -> list[QueueItem]:
    """The first row of each of the next ``n`` open targets after ``after`` (None: from the top)."""
    if n <= 0:
        return []
    stmt = where.apply(select(QueueItem).where(QueueItem.active.is_(True),
                                               QueueItem.status.in_(["open", DISPUTED])))
    if after is not None:
        stmt = stmt.where(QueueItem.priority > after.priority)
    seen = {(after.target_level, after.target_key)} if after is not None else set()
    out = []
    for item in session.scalars(stmt.order_by(QueueItem.priority, QueueItem.id).limit(50 * n)):
        target = (item.target_level, item.target_key)
        if target not in seen:
            seen.add(target)
            out.append(item)
            if len(out) == n:
                break
    return out


def images_of(item: QueueItem) -> list[dict]:
    return json.loads(item.images_json or "[]")
