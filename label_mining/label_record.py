"""One label of one breast (or image) for one task, with its uncertainty and provenance.

``u`` and ``weight`` always satisfy ``weight = 0 if label is None else 1 - u``; a missing label
has ``u = 1`` (the paper's y_t = 0 case) and a ``missing_reason`` a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from curation.tasks import TASKS, ConflictKind

MAX_EVIDENCE_CHARS = 300
_ALLOWED = {task: frozenset(str(v) for v in values) for task, values in TASKS.items()}


@dataclass(frozen=True)
class LabelRecord:
    task: str
    label: str | None
    u: float
    source: str                 # biopsy|surgery|follow_up|structured|report|derived|dicom_tag|review|none
    rule_id: str
    evidence: str = ""
    conflict: bool = False
    detail: str | None = None   # e.g. the BI-RADS sub-category "4B" behind label "4"
    missing_reason: str | None = None
    conflict_kind: str | None = None   # a curation.tasks.ConflictKind value; None exactly when conflict is False

    def __post_init__(self):
        allowed = _ALLOWED.get(self.task)
        if allowed is None:
            raise ValueError(f"unknown task {self.task!r}; expected one of {tuple(TASKS)}")
        if self.label is not None:
            if self.label not in allowed:
                raise ValueError(f"{self.label!r} is not a valid {self.task} label; expected one of {sorted(allowed)}")
            if not 0.0 <= self.u <= 1.0:
                raise ValueError(f"u must be in [0, 1], got {self.u}")
        if self.conflict and self.conflict_kind is None:
            object.__setattr__(self, "conflict_kind", ConflictKind.OTHER.value)
        elif self.conflict_kind is not None:
            kind = ConflictKind(self.conflict_kind).value     # raises on a value outside the vocabulary
            object.__setattr__(self, "conflict_kind", kind if self.conflict else None)

    @property
    def weight(self) -> float:
        return 0.0 if self.label is None else round(1.0 - self.u, 6)

    def with_(self, **changes) -> "LabelRecord":
        return replace(self, **changes)


def missing(task: str, reason: str, rule_id: str = "missing", evidence: str = "") -> LabelRecord:
    return LabelRecord(task=task, label=None, u=1.0, source="none", rule_id=rule_id,
                       evidence=evidence, missing_reason=reason)


def clip_evidence(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_EVIDENCE_CHARS else text[:MAX_EVIDENCE_CHARS - 1] + "…"


def typed_label(task: str, label) -> int | str | None:
    """The stored string label as its task's class value: ("acr", "4") -> 4, ("density", "B") -> "B",
    null/NaN -> None. Raises on a value outside the task's vocabulary (:mod:`curation.tasks`)."""
    if label is None or label != label:
        return None
    classes = TASKS[task]
    value = int(label) if isinstance(classes[0], int) else str(label)
    if value not in classes:
        raise ValueError(f"{label!r} is not a valid {task} label; expected one of {classes}")
    return value
