"""Apply annotator decisions (``labels/adjudications.parquet``, written by the review app).

The effective decision per (target_key, task) is the latest non-``skip`` one (ties broken by
``decision_id`` so the result never depends on file order). ``confirm``/``correct`` set the label
with u = 0, weight 1, source ``review``; ``unknown`` makes it missing (weight 0, source ``review``):
the annotator looked and could not tell, which is information, not an error.
"""

from __future__ import annotations

import pandas as pd

from curation.tasks import TASKS

REQUIRED = ("decision_id", "target_level", "target_key", "task", "decision", "label", "decided_at")


def effective_decisions(adjudications: pd.DataFrame, level: str) -> pd.DataFrame:
    missing_cols = [c for c in REQUIRED if c not in adjudications.columns]
    if missing_cols:
        raise ValueError(f"adjudications table lacks columns {missing_cols}")
    rows = adjudications[(adjudications["target_level"] == level) & (adjudications["decision"] != "skip")]
    if "reverts" in rows.columns:  # review app undo: an appended reversal cancels the decision it names
        rows = rows[(rows["decision"] != "undo") & ~rows["decision_id"].isin(rows["reverts"].dropna())]
    if rows.empty:
        return rows
    rows = rows.assign(_at=pd.to_datetime(rows["decided_at"], utc=True, errors="coerce"))
    rows = rows.sort_values(["target_key", "task", "_at", "decision_id"], kind="mergesort")
    return rows.groupby(["target_key", "task"], sort=True).tail(1).drop(columns="_at")


def apply_adjudications(labels: pd.DataFrame, adjudications: pd.DataFrame | None, level: str,
                        key_column: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Return the labels with decisions applied and counts per outcome (applied/unknown/invalid/unmatched)."""
    counts = {"applied": 0, "unknown": 0, "invalid": 0, "unmatched": 0}
    if adjudications is None or adjudications.empty:
        return labels, counts
    decisions = effective_decisions(adjudications, level)
    if decisions.empty:
        return labels, counts
    out = labels.copy()
    index = {(k, t): i for i, (k, t) in enumerate(zip(out[key_column], out["task"]))}
    for d in decisions.itertuples(index=False):
        pos = index.get((d.target_key, d.task))
        if pos is None:
            counts["unmatched"] += 1
            continue
        if d.decision == "unknown":
            label, u, reason = None, 1.0, "annotator_could_not_tell"
            counts["unknown"] += 1
        elif d.decision in ("confirm", "correct"):
            label = None if d.label is None or d.label != d.label else str(d.label)
            if label is None or d.task not in TASKS or label not in {str(v) for v in TASKS[d.task]}:
                counts["invalid"] += 1
                continue
            u, reason = 0.0, None
            counts["applied"] += 1
        else:
            counts["invalid"] += 1
            continue
        row = out.index[pos]
        out.loc[row, ["label", "u", "weight", "source", "rule_id", "missing_reason"]] = [
            label, u, 0.0 if label is None else 1.0, "review", f"review.{d.decision}", reason]
        out.loc[row, "conflict"] = False
        if "conflict_kind" in out.columns:
            out.loc[row, "conflict_kind"] = None
        out.loc[row, "evidence"] = f"review decision {d.decision_id}"
    return out, counts
