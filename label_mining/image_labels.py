"""Per-image labels: the breast's labels broadcast to each of its images, plus the view task.

Every catalogued image gets exactly one row per task (breastbin, acr, density, view) — the
validation suite and the manifests rely on it. An image whose breast has no label row (no
report for that accession) gets missing labels with a reason, never a guess. When the image's
own laterality tags disagree (catalogue ``laterality_conflict``), the breast labels it inherits may
belong to the other breast, so their u gets the policy's ``laterality_conflict`` term.

Review decisions are applied here (and only here, so the graph has no cycle): breast-level
decisions to the breast rows before the broadcast, image-level ones after it.
Per-image structured labels (``labels.csv`` rows with ``sop_instance_uid``) override the broadcast.
"""

from __future__ import annotations

import pandas as pd

from curation.pseudonym import pseudonymise
from curation.tasks import BREAST_TASKS, ConflictKind
from label_mining.adjudication import apply_adjudications
from label_mining.label_record import LabelRecord
from label_mining.schemas import IMAGE_LABELS_SCHEMA
from label_mining.uncertainty_policy import UncertaintyPolicy, combine
from label_mining.view_labels import view_label

_CARRIED = ["label", "u", "weight", "source", "rule_id", "evidence", "conflict", "conflict_kind", "policy_version",
            "label_detail", "missing_reason"]
CATALOG_COLUMNS = ("image_key", "breast_key", "accession_key", "patient_pid", "laterality", "view", "view_source",
                   "view_conflict")


def _row(record: LabelRecord, version: str) -> dict:
    return {"label": record.label, "u": record.u, "weight": record.weight, "source": record.source,
            "rule_id": record.rule_id, "evidence": record.evidence, "conflict": record.conflict,
            "conflict_kind": record.conflict_kind,
            "policy_version": version, "label_detail": record.detail, "missing_reason": record.missing_reason}


def build_image_labels(catalog: pd.DataFrame, breast_labels: pd.DataFrame, policy: UncertaintyPolicy,
                       adjudications: pd.DataFrame | None = None,
                       structured_images: dict[tuple[str, str], LabelRecord] | None = None,
                       key: bytes | None = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """Return (image_labels frame in ``IMAGE_LABELS_SCHEMA`` column order, counts)."""
    absent = [c for c in CATALOG_COLUMNS if c not in catalog.columns]
    if absent:
        raise ValueError(f"catalogue lacks columns {absent}")
    stats: dict[str, int] = {}
    breast, breast_counts = apply_adjudications(breast_labels, adjudications, "breast", "breast_key")
    stats.update({f"breast_review_{k}": v for k, v in breast_counts.items()})
    # the tag votes are optional (a catalogue written before they existed has none)
    optional = [c for c in ("view_votes", "laterality_votes") if c in catalog.columns]
    images = catalog[list(CATALOG_COLUMNS) + optional].drop_duplicates("image_key").reset_index(drop=True)
    if "laterality_conflict" in catalog.columns:
        images["laterality_conflict"] = catalog.drop_duplicates("image_key")["laterality_conflict"].fillna(False).to_numpy()
    else:
        images["laterality_conflict"] = False
    version = policy.policy_version

    tasks = pd.DataFrame({"task": list(BREAST_TASKS)})
    grid = images.merge(tasks, how="cross")
    if "conflict_kind" not in breast.columns:     # a table written before the column existed
        breast = breast.assign(conflict_kind=None)
    keep = breast[["breast_key", "task"] + _CARRIED].drop_duplicates(["breast_key", "task"])
    merged = grid.merge(keep, on=["breast_key", "task"], how="left")
    no_breast = merged["source"].isna()
    stats["images_without_breast_labels"] = int(no_breast[merged["task"] == "acr"].sum())
    merged.loc[no_breast, ["label", "u", "weight", "source", "rule_id", "evidence", "conflict", "conflict_kind",
                           "policy_version", "label_detail", "missing_reason"]] = [
        None, 1.0, 0.0, "none", "missing", "", False, None, version, None, "no_report_for_breast"]
    shaky = merged["laterality_conflict"].astype(bool) & merged["label"].notna()
    if shaky.any():
        merged.loc[shaky, "u"] = [combine(u, policy.terms.laterality_conflict) for u in merged.loc[shaky, "u"]]
        merged.loc[shaky, "weight"] = (1.0 - merged.loc[shaky, "u"]).round(6)
        # the image's own laterality tags disagree: an existing conflict keeps its kind, a new one is a tag conflict
        merged.loc[shaky & ~merged["conflict"].fillna(False).astype(bool), "conflict_kind"] = \
            ConflictKind.DICOM_TAG_CONFLICT.value
        merged.loc[shaky, "conflict"] = True
        if "laterality_votes" in merged.columns:   # the reviewer sees both tags' values beside the report's evidence
            said = merged.loc[shaky, "laterality_votes"]
            merged.loc[shaky, "evidence"] = [
                f"{ev or ''} [laterality tags disagree: {v}]".strip() if isinstance(v, str) else ev
                for ev, v in zip(merged.loc[shaky, "evidence"], said)]
    stats["labels_with_laterality_conflict"] = int(shaky.sum())

    view_rows = []
    for img in images.itertuples(index=False):
        conflict = False if pd.isna(img.view_conflict) else bool(img.view_conflict)
        votes = getattr(img, "view_votes", None)
        rec = view_label(None if pd.isna(img.view) else img.view, None if pd.isna(img.view_source) else img.view_source,
                         conflict, policy, None if votes is None or pd.isna(votes) else votes)
        view_rows.append({**{c: getattr(img, c) for c in CATALOG_COLUMNS}, "task": "view", **_row(rec, version)})
    frame = pd.concat([merged, pd.DataFrame(view_rows)], ignore_index=True) if view_rows else merged

    if structured_images:
        by_key = {}
        for (sop, task), rec in structured_images.items():
            image_key = pseudonymise(sop, "sop", key) if key is not None else sop
            by_key[(image_key, task)] = rec
        index = {(k, t): i for i, (k, t) in enumerate(zip(frame["image_key"], frame["task"]))}
        applied = 0
        for (image_key, task), rec in by_key.items():
            pos = index.get((image_key, task))
            if pos is None:
                continue
            for col, value in _row(rec, version).items():
                frame.at[frame.index[pos], col] = value
            applied += 1
        stats["structured_image_labels_applied"] = applied

    frame, image_counts = apply_adjudications(frame, adjudications, "image", "image_key")
    stats.update({f"image_review_{k}": v for k, v in image_counts.items()})
    order = {t: i for i, t in enumerate(BREAST_TASKS + ("view",))}
    frame = frame.assign(_t=frame["task"].map(order)).sort_values(["image_key", "_t"], kind="mergesort")
    frame["conflict"] = frame["conflict"].fillna(False).astype(bool)
    frame["conflict_kind"] = frame["conflict_kind"].where(frame["conflict"], None)
    frame["u"] = frame["u"].astype(float)
    frame["weight"] = frame["weight"].astype(float)
    return frame[[f.name for f in IMAGE_LABELS_SCHEMA]].reset_index(drop=True), stats
