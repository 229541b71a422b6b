"""Blinded double reading, adjudication and inter-reader agreement.

For items whose best reason tier is in ``double_read_tiers`` (e.g. ``{0}``: pathology conflicts), a
label-changing decision is first stored as a *read* (table ``reads``), invisible to the other
reader. The second read settles the item: two identical reads become one decision (annotator
``alice+bob``, a consensus); different reads set the item ``disputed``, and only an adjudicator
(or admin) is handed it, with both reads shown, to decide. Agreement is reported as Cohen's kappa
per annotator pair and task over the items both read.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from review_app.queue import REASON_TIER
from review_app.storage import QueueItem, Read, User

DISPUTED = "disputed"
ADJUDICATOR_ROLES = ("adjudicator", "admin")


def item_tier(item: QueueItem) -> int:
    return min((REASON_TIER.get(r, 9) for r in item.reasons.split(";") if r), default=9)


def needs_double_read(item: QueueItem, tiers: frozenset[int]) -> bool:
    return bool(tiers) and item_tier(item) in tiers


def can_adjudicate(user: User) -> bool:
    return user.role in ADJUDICATOR_ROLES


def reads_of(session: Session, item_id: int) -> list[Read]:
    return list(session.scalars(select(Read).where(Read.item_id == item_id).order_by(Read.id)))


def read_value(read: Read) -> str:
    """What a reader said, as one category: the class, or 'unknown'."""
    return read.label if read.decision != "unknown" and read.label is not None else "unknown"


@dataclass(frozen=True)
class PairAgreement:
    task: str
    first: str
    second: str
    n: int
    agreed: int
    kappa: float | None   # None when undefined (fewer than 2 items, or one category only)


def agreement(session: Session) -> list[PairAgreement]:
    """Cohen's kappa (sklearn) per (task, annotator pair) over the items both annotators read."""
    from sklearn.metrics import cohen_kappa_score  # imported here: the app starts without sklearn's import cost
    by_item: dict[int, list[Read]] = {}
    for read in session.scalars(select(Read).order_by(Read.id)):
        by_item.setdefault(read.item_id, []).append(read)
    pairs: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
    for reads in by_item.values():
        for a, b in itertools.combinations(sorted(reads, key=lambda r: r.annotator), 2):
            pairs.setdefault((a.task, a.annotator, b.annotator), []).append((read_value(a), read_value(b)))
    out = []
    for (task, first, second), values in sorted(pairs.items()):
        left, right = [v[0] for v in values], [v[1] for v in values]
        kappa = None
        if len(values) >= 2 and len(set(left) | set(right)) > 1:
            kappa = float(cohen_kappa_score(left, right))
        out.append(PairAgreement(task, first, second, len(values), sum(x == y for x, y in values), kappa))
    return out
