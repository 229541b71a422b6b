"""The view task per image, from the DICOM catalogue (ingest resolved the tags).

The catalogue gives ``view`` with the tag it came from (``view_source``: ViewCodeSequence >
ViewPosition > free-text descriptions) and ``view_conflict`` when the tags disagree. The task has
two classes (paper 2.1): CC, and MLO with the lateral views (ML, LM) folded in; exaggerated CC
views (XCCL, XCCM) are CC. A less authoritative tag, a folded variant and a conflict each add
their policy term to u; a view the task cannot express (FB, spot views) is missing with a reason.
"""

from __future__ import annotations

from curation.tasks import ConflictKind
from label_mining.label_record import LabelRecord, missing
from label_mining.uncertainty_policy import UncertaintyPolicy, combine

_TASK_VIEW = {"CC": ("CC", False), "MLO": ("MLO", False), "ML": ("MLO", True), "LM": ("MLO", True),
              "XCCL": ("CC", True), "XCCM": ("CC", True)}


def view_label(view: str | None, view_source: str | None, view_conflict: bool | None,
               policy: UncertaintyPolicy, votes: str | None = None) -> LabelRecord:
    raw = (view or "").strip().upper()
    if not raw:
        return missing("view", "no_view_in_dicom_tags")
    if raw not in _TASK_VIEW:
        return missing("view", f"view_{raw}_not_cc_or_mlo", "view.unsupported", f"{view_source}: {raw}")
    label, folded = _TASK_VIEW[raw]
    sources = policy.view.source_u
    terms = [sources.get(view_source or "", max(sources.values(), default=0.0))]
    if folded:
        terms.append(policy.view.variant_u)
    if view_conflict:
        terms.append(policy.view.conflict)
    return LabelRecord("view", label, combine(*terms), "dicom_tag", f"view.{view_source or 'unknown'}",
                       f"{view_source}: {raw}" + ((f" (tags disagree: {votes})" if votes else " (tags disagree)")
                                                  if view_conflict else ""),
                       conflict=bool(view_conflict),
                       conflict_kind=ConflictKind.DICOM_TAG_CONFLICT if view_conflict else None, detail=raw if folded else None)
