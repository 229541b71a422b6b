"""Recording decisions: append-only, optimistic concurrency, idempotent re-submits.

Every decision form carries the item's ``version`` as the annotator saw it and a one-off
``decision_id``. A label-changing decision (confirm / correct / unknown) is stored only if the
item is still at that version — the version bump and the decision row commit together — so
two annotators on one item never silently overwrite each other: the second gets
:class:`ConflictError` naming who decided what and when. Re-sending the same form (double
click, browser retry) returns the stored decision instead of storing a second one.
``skip`` changes no label, so it never conflicts; it only moves that annotator on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from curation.tasks import TASKS, class_index
from review_app import APP_VERSION
from review_app.consensus import DISPUTED, can_adjudicate, needs_double_read, read_value, reads_of
from review_app.storage import DECISIONS, Decision, QueueItem, Read, User, utcnow

DECISION_ID_RE = re.compile(r"^[0-9a-f]{32}$")
LABEL_CHANGING = ("confirm", "correct", "unknown")


class DecisionError(ValueError):
    """The request itself is wrong (unknown action, class not in the task's vocabulary, …)."""


class ItemNotFound(LookupError):
    pass


class ConflictError(RuntimeError):
    """Someone else changed the item after this annotator opened it; nothing was stored."""

    def __init__(self, item_id: int, expected_version: int, current_version: int, latest: Decision | None):
        self.item_id = item_id
        self.expected_version = expected_version
        self.current_version = current_version
        self.latest = latest
        if latest is not None:
            what = latest.decision + (f" → {latest.label}" if latest.label and latest.decision == "correct" else "")
            msg = (f"Not saved: {latest.annotator} decided this item ({what}) at "
                   f"{latest.decided_at:%Y-%m-%d %H:%M:%S} UTC, after you opened it. "
                   "The page now shows the current label — decide again if you still disagree.")
        else:
            msg = ("Not saved: the proposed label of this item was refreshed from the label tables after you "
                   "opened it. Review the current proposal and decide again.")
        super().__init__(msg)


@dataclass(frozen=True)
class DecisionRequest:
    item_id: int
    decision: str
    expected_version: int
    decision_id: str
    label: str | None = None


def normalise_label(task: str, value: str | None) -> str:
    """``("acr", " 4 ")`` -> ``"4"``; refuses values outside the task's vocabulary."""
    if task not in TASKS:
        raise DecisionError(f"unknown task {task!r}")
    if value is None or not str(value).strip():
        raise DecisionError(f"'correct' needs a class for {task}: one of {list(TASKS[task])}")
    try:
        idx = class_index(task, str(value).strip())
    except ValueError as exc:
        raise DecisionError(str(exc)) from None
    return str(TASKS[task][idx])


def latest_decision(session: Session, item_id: int, *, include_skip: bool = False) -> Decision | None:
    stmt = select(Decision).where(Decision.item_id == item_id)
    if not include_skip:
        stmt = stmt.where(Decision.decision != "skip")
    return session.scalar(stmt.order_by(Decision.id.desc()).limit(1))


def record_decision(factory: sessionmaker[Session], user: User, req: DecisionRequest,
                    double_read_tiers: frozenset[int] = frozenset()) -> Decision | None:
    """Store one decision by ``user`` (never by a name from the request); see module doc.

    On a double-read item (:mod:`review_app.consensus`) the first reading is stored as a blinded
    read and ``None`` is returned; the second settles the item (consensus decision or disputed).
    """
    if req.decision == "undo":
        raise DecisionError("undo is its own action: use the undo button of the decision")
    if req.decision not in DECISIONS:
        raise DecisionError(f"decision must be one of {list(DECISIONS)}, got {req.decision!r}")
    if not DECISION_ID_RE.match(req.decision_id or ""):
        raise DecisionError("decision_id must be the 32-hex-digit id issued with the form; reload the item")
    if req.expected_version < 0:
        raise DecisionError("the form lacks the item version it was shown at; reload the item")
    with factory() as session:
        replay = _replayed(session, user, req)
        if replay is not None:
            return replay
        item = session.get(QueueItem, req.item_id)
        if item is None:
            raise ItemNotFound(f"queue item {req.item_id} does not exist")
        if req.decision in LABEL_CHANGING and item.version != req.expected_version:
            # checked before the label: what the annotator saw is gone, whatever the new state allows
            raise ConflictError(item.id, req.expected_version, item.version, latest_decision(session, item.id))
        if item.status == DISPUTED and req.decision in LABEL_CHANGING and not can_adjudicate(user):
            raise DecisionError("the two readers of this item disagree: it waits for an adjudicator")
        if item.status == "open" and req.decision in LABEL_CHANGING and needs_double_read(item, double_read_tiers):
            return _record_read(session, item, user, req)
        label = _decided_label(item, req)
        decision = Decision(
            decision_id=req.decision_id, item_id=item.id, target_level=item.target_level,
            target_key=item.target_key, task=item.task, decision=req.decision, label=label,
            user_id=user.id, annotator=user.username, decided_at=utcnow(),
            previous_label=item.current_label, previous_u=item.current_u,
            base_version=item.version, resulting_version=None, app_version=APP_VERSION)
        if req.decision in LABEL_CHANGING:
            new_u = None if req.decision == "unknown" else 0.0
            bumped = session.execute(
                update(QueueItem)
                .where(QueueItem.id == item.id, QueueItem.version == req.expected_version)
                .values(version=req.expected_version + 1, status="decided", current_label=label,
                        current_u=new_u, lease_user_id=None, lease_until=None)
                .execution_options(synchronize_session=False))
            if bumped.rowcount != 1:
                session.rollback()
                fresh = session.get(QueueItem, req.item_id, populate_existing=True)
                raise ConflictError(item.id, req.expected_version, fresh.version, latest_decision(session, item.id))
            decision.resulting_version = req.expected_version + 1
        else:
            session.execute(update(QueueItem)
                            .where(QueueItem.id == item.id, QueueItem.lease_user_id == user.id)
                            .values(lease_user_id=None, lease_until=None)
                            .execution_options(synchronize_session=False))
        session.add(decision)
        try:
            session.commit()
        except IntegrityError:
            # a concurrent request won the race for this version or reused this decision_id
            session.rollback()
            replay = _replayed(session, user, req)
            if replay is not None:
                return replay
            fresh = session.get(QueueItem, req.item_id, populate_existing=True)
            raise ConflictError(req.item_id, req.expected_version, fresh.version,
                                latest_decision(session, req.item_id)) from None
        return decision


def _record_read(session: Session, item: QueueItem, user: User, req: DecisionRequest) -> Decision | None:
    label = _decided_label(item, req)
    reads = reads_of(session, item.id)
    mine = [r for r in reads if r.user_id == user.id]
    if mine:
        if (mine[0].decision, mine[0].label) == (req.decision, label):
            return None  # the same read sent twice
        raise DecisionError("you already read this item; its second reader or an adjudicator settles it")
    read = Read(item_id=item.id, task=item.task, user_id=user.id, annotator=user.username,
                decision=req.decision, label=label, read_at=utcnow())
    session.add(read)
    reads.append(read)
    if len(reads) < 2:
        session.execute(update(QueueItem).where(QueueItem.id == item.id, QueueItem.lease_user_id == user.id)
                        .values(lease_user_id=None, lease_until=None)
                        .execution_options(synchronize_session=False))  # free for the second reader
        session.commit()
        return None
    first, second = reads[0], reads[1]
    guard = update(QueueItem).where(QueueItem.id == item.id, QueueItem.version == item.version)
    decision = None
    if read_value(first) == read_value(second):
        kind = "unknown" if label is None else ("confirm" if label == item.current_label else "correct")
        decision = Decision(
            decision_id=req.decision_id, item_id=item.id, target_level=item.target_level,
            target_key=item.target_key, task=item.task, decision=kind, label=label, user_id=user.id,
            annotator=f"{first.annotator}+{second.annotator}", decided_at=utcnow(),
            previous_label=item.current_label, previous_u=item.current_u, base_version=item.version,
            resulting_version=item.version + 1, app_version=APP_VERSION)
        values = dict(status="decided", current_label=label, current_u=None if kind == "unknown" else 0.0)
        session.add(decision)
    else:
        values = dict(status=DISPUTED)
    bumped = session.execute(guard.values(version=item.version + 1, lease_user_id=None, lease_until=None, **values)
                             .execution_options(synchronize_session=False))
    if bumped.rowcount != 1:
        session.rollback()
        fresh = session.get(QueueItem, item.id, populate_existing=True)
        raise ConflictError(item.id, req.expected_version, fresh.version, None)
    try:
        session.commit()
    except IntegrityError:  # the other reader's read landed at the same moment
        session.rollback()
        fresh = session.get(QueueItem, item.id, populate_existing=True)
        raise ConflictError(item.id, req.expected_version, fresh.version, None) from None
    return decision


def _decided_label(item: QueueItem, req: DecisionRequest) -> str | None:
    if req.decision == "confirm":
        if item.current_label is None:
            raise DecisionError("there is no label to confirm on this item; pick a class (correct) or unknown")
        return item.current_label
    if req.decision == "correct":
        return normalise_label(item.task, req.label)
    return None


def _replayed(session: Session, user: User, req: DecisionRequest) -> Decision | None:
    prior = session.scalar(select(Decision).where(Decision.decision_id == req.decision_id))
    if prior is None:
        return None
    if prior.user_id != user.id or prior.item_id != req.item_id or prior.decision != req.decision:
        raise DecisionError("this form was already used for a different decision; reload the item")
    return prior


@dataclass(frozen=True)
class QueueFilter:
    """Queue filters an annotator picks (task, batch, reason); empty = all."""
    task: str = ""
    batch: str = ""
    reason: str = ""

    def apply(self, stmt):
        if self.task:
            stmt = stmt.where(QueueItem.task == self.task)
        if self.batch:
            stmt = stmt.where(QueueItem.batch == self.batch)
        if self.reason:  # reasons is a ';'-joined list of reason names (no name contains another)
            stmt = stmt.where(or_(QueueItem.reasons == self.reason,
                                  QueueItem.reasons.like(f"{self.reason};%"),
                                  QueueItem.reasons.like(f"%;{self.reason}"),
                                  QueueItem.reasons.like(f"%;{self.reason};%")))
        return stmt


def next_item_id(factory: sessionmaker[Session], user: User, lease_s: int, *, batch: int = 32,
                 max_rounds: int = 50, where: QueueFilter = QueueFilter()) -> int | None:
    """The highest-priority open item this annotator has not skipped or read and nobody else holds;
    for adjudicators, disputed double-read items come first.

    Opening an item leases it — and the other tasks of its target, shown on the same page — for
    ``lease_s`` so concurrent annotators are handed different targets; the lease is advisory — correctness rests on the version check, not on it. Under
    contention many annotators race for the same first item, so the candidates are tried in
    priority order until one lease sticks; ``None`` means the queue really is empty for them.
    """
    statuses = ["open", DISPUTED] if can_adjudicate(user) else ["open"]
    for _ in range(max_rounds):
        with factory() as session:
            now = utcnow()
            skipped = select(Decision.item_id).where(Decision.user_id == user.id, Decision.decision == "skip")
            read = select(Read.item_id).where(Read.user_id == user.id)
            free = or_(QueueItem.lease_until.is_(None), QueueItem.lease_until < now,
                       QueueItem.lease_user_id == user.id)
            candidates = list(session.scalars(where.apply(
                select(QueueItem.id)
                .where(QueueItem.active.is_(True), QueueItem.status.in_(statuses), free,
                       QueueItem.id.not_in(skipped), QueueItem.id.not_in(read)))
                .order_by((QueueItem.status != DISPUTED), QueueItem.priority, QueueItem.id)
                .limit(batch)))
            if not candidates:
                return None
            for candidate in candidates:
                took = session.execute(
                    update(QueueItem).where(QueueItem.id == candidate, QueueItem.status.in_(statuses), free)
                    .values(lease_user_id=user.id, lease_until=now + timedelta(seconds=lease_s))
                    .execution_options(synchronize_session=False))
                if took.rowcount == 1:
                    # the target's other tasks go with it: they are decided on the same page
                    target = session.get(QueueItem, candidate)
                    session.execute(
                        update(QueueItem).where(QueueItem.target_level == target.target_level,
                                                QueueItem.target_key == target.target_key,
                                                QueueItem.id != candidate, QueueItem.status.in_(statuses), free)
                        .values(lease_user_id=user.id, lease_until=now + timedelta(seconds=lease_s))
                        .execution_options(synchronize_session=False))
                    session.commit()
                    return candidate
                session.commit()
    return None


@dataclass(frozen=True)
class AnnotatorProgress:
    annotator: str
    confirm: int
    correct: int
    unknown: int
    skip: int
    last_decided_at: datetime | None

    @property
    def decided(self) -> int:
        return self.confirm + self.correct + self.unknown


@dataclass(frozen=True)
class Progress:
    items: int
    open: int
    decided: int
    annotators: list[AnnotatorProgress]

    @property
    def fraction_done(self) -> float:
        return self.decided / self.items if self.items else 1.0


def progress(session: Session) -> Progress:
    counts = dict(session.execute(select(QueueItem.status, func.count()).where(QueueItem.active.is_(True))
                                  .group_by(QueueItem.status)).all())
    rows = session.execute(select(Decision.annotator, Decision.decision, func.count(), func.max(Decision.decided_at))
                           .group_by(Decision.annotator, Decision.decision)).all()
    per: dict[str, dict] = {}
    for name, kind, n, last in rows:
        entry = per.setdefault(name, {d: 0 for d in DECISIONS} | {"last": None})
        if kind == "undo":
            continue
        entry[kind] = int(n)
        entry["last"] = max(filter(None, [entry["last"], last]), default=None)
    annotators = [AnnotatorProgress(name, e["confirm"], e["correct"], e["unknown"], e["skip"], e["last"])
                  for name, e in sorted(per.items())]
    open_n = int(counts.get("open", 0)) + int(counts.get(DISPUTED, 0))
    decided_n = int(counts.get("decided", 0))
    return Progress(items=open_n + decided_n, open=open_n, decided=decided_n, annotators=annotators)


def history(session: Session, item_id: int) -> list[Decision]:
    return list(session.scalars(select(Decision).where(Decision.item_id == item_id).order_by(Decision.id.desc())))


def open_items(session: Session, limit: int = 200, where: QueueFilter = QueueFilter()) -> list[QueueItem]:
    return list(session.scalars(where.apply(
        select(QueueItem).where(QueueItem.active.is_(True), QueueItem.status.in_(["open", DISPUTED])))
        .order_by(QueueItem.priority, QueueItem.id).limit(limit)))


__all__ = ["ConflictError", "DecisionError", "DecisionRequest", "ItemNotFound", "Progress", "QueueFilter",
           "history", "latest_decision", "next_item_id", "normalise_label", "open_items", "progress",
           "record_decision"]
