"""Annotator workflow around decisions: undo (an appended reversal), "my decisions", per-batch progress."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from review_app import APP_VERSION
from review_app.consensus import DISPUTED
from review_app.decisions import LABEL_CHANGING, ConflictError, DecisionError, latest_decision
from review_app.storage import Decision, QueueItem, User, utcnow


def undo_decision(factory: sessionmaker[Session], user: User, decision_id: str) -> Decision:
    """Reverse ``user``'s own latest label change on an item by appending an ``undo`` decision.

    Nothing is edited or deleted: the undo row names the decision it reverts (``reverts``) and
    restores the label and u it replaced; the item is open again unless an earlier decision still
    stands. Only the change still in force can be undone (the version check refuses it otherwise),
    and a consensus of two readers is left to an adjudicator.
    """
    with factory() as session:
        target = session.scalar(select(Decision).where(Decision.decision_id == decision_id))
        if target is None or target.user_id != user.id:
            raise DecisionError("no such decision of yours")
        if target.decision not in LABEL_CHANGING or "+" in target.annotator:
            raise DecisionError("only your own confirm / correct / unknown can be undone "
                                "(a two-reader consensus is changed by an adjudicator)")
        item = session.get(QueueItem, target.item_id)
        if item.version != target.resulting_version:
            raise ConflictError(item.id, target.resulting_version or 0, item.version,
                                latest_decision(session, item.id))
        earlier = _standing_before(session, item.id, target.id)
        undo = Decision(
            decision_id=secrets.token_hex(16), item_id=item.id, target_level=item.target_level,
            target_key=item.target_key, task=item.task, decision="undo", label=target.previous_label,
            user_id=user.id, annotator=user.username, decided_at=utcnow(), previous_label=item.current_label,
            previous_u=item.current_u, base_version=item.version, resulting_version=item.version + 1,
            app_version=APP_VERSION, reverts=target.decision_id)
        bumped = session.execute(
            update(QueueItem).where(QueueItem.id == item.id, QueueItem.version == item.version)
            .values(version=item.version + 1, current_label=target.previous_label, current_u=target.previous_u,
                    status="decided" if earlier else "open")
            .execution_options(synchronize_session=False))
        if bumped.rowcount != 1:
            session.rollback()
            raise ConflictError(item.id, item.version, item.version + 1, None)
        session.add(undo)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            raise ConflictError(item.id, item.version, item.version + 1, None) from None
        return undo


def _standing_before(session: Session, item_id: int, before_id: int) -> bool:
    """Whether a label-changing decision older than ``before_id`` is still in force (not undone)."""
    rows = list(session.scalars(select(Decision).where(Decision.item_id == item_id, Decision.id < before_id)
                                .order_by(Decision.id)))
    undone = {d.reverts for d in rows if d.decision == "undo"}
    return any(d.decision in LABEL_CHANGING and d.decision_id not in undone for d in rows)


def my_decisions(session: Session, user: User, limit: int = 100) -> list[tuple[Decision, QueueItem, bool]]:
    """(decision, item, can still be undone) for ``user``'s recent decisions, newest first."""
    rows = session.execute(select(Decision, QueueItem).join(QueueItem, QueueItem.id == Decision.item_id)
                           .where(Decision.user_id == user.id).order_by(Decision.id.desc()).limit(limit)).all()
    return [(d, item, d.decision in LABEL_CHANGING and "+" not in d.annotator
             and d.resulting_version == item.version) for d, item in rows]


def previous_item_id(session: Session, user: User, before_item: int | None = None) -> int | None:
    """The item of this annotator's latest decision on another target than ``before_item``'s (a
    target's tasks share one page, so "previous" steps back a breast or an image, not a task)."""
    stmt = select(Decision.item_id).where(Decision.user_id == user.id)
    current = session.get(QueueItem, before_item) if before_item is not None else None
    if current is not None:
        same = select(QueueItem.id).where(QueueItem.target_level == current.target_level,
                                          QueueItem.target_key == current.target_key)
        stmt = stmt.where(Decision.item_id.not_in(same))
    elif before_item is not None:
        stmt = stmt.where(Decision.item_id != before_item)
    return session.scalar(stmt.order_by(Decision.id.desc()).limit(1))


@dataclass(frozen=True)
class BatchProgress:
    batch: str
    items: int
    decided: int
    disputed: int


def batch_progress(session: Session) -> list[BatchProgress]:
    rows = session.execute(select(QueueItem.batch, QueueItem.status, func.count())
                           .where(QueueItem.active.is_(True)).group_by(QueueItem.batch, QueueItem.status)).all()
    per: dict[str, dict[str, int]] = {}
    for batch, status, n in rows:
        per.setdefault(batch, {})[status] = int(n)
    return [BatchProgress(b, sum(c.values()), c.get("decided", 0), c.get(DISPUTED, 0)) for b, c in sorted(per.items())]
