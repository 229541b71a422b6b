"""Build the review queue from the label tables — pure pandas, no I/O, deterministic.

Which labels an annotator sees, and in which order
---------------------------------------------------
A label row becomes a queue item when at least one *reason* applies:

==========================  ====  ==============================================================
reason                      tier  why it is worth a person's minute
==========================  ====  ==============================================================
unattached_pathology        0     pathology of the patient could not be attached to an exam
report_vs_pathology         0     gold standard (biopsy/surgery/follow-up) disagrees with the
                                  report: a missed cancer or an over-call; decides the malignancy
                                  label the network learns most from
two_readers                 1     two readers of one study wrote different categories
report_vs_dicom_tag         1     the report and a DICOM header disagree
dicom_tag_conflict          1     DICOM tags disagree among themselves (ViewPosition vs description)
orientation_disagreement    1     preprocessing found the breast on the other side than the
                                  laterality tag says: the image may sit under the wrong breast
label_conflict              1     the label miner flagged a conflict of another kind
                                  (reason of each ``conflict_kind``: :data:`KIND_REASON`)
model_disagreement          2     a trained model puts >= ``model_disagreement`` on another class
high_uncertainty            3     u >= ``u_threshold`` (hedged wording, junior reader, …)
==========================  ====  ==============================================================

Items are ranked by their best (lowest) tier, then by how many reasons apply, then by u
(highest first), then clinical task order (breastbin, acr, density, view), then key — so the
order is total and the same inputs always give the same queue. The queue is then grouped by
target: targets in the order of their most urgent item, a target's items consecutive in rank
order, because the app shows one target (a breast or an image) with all its flagged tasks on
one page (:mod:`review_app.targets`).

Targets: breast-level tasks (breastbin, acr, density) are reviewed once per breast from
``breast_labels``; the image-level ``view`` task once per image from ``image_labels``. An image
with an orientation disagreement additionally gets image-level items for each of its labels,
because the fix (``unknown`` on that image) must not touch the other images of the breast.
Labels already decided by a person never re-enter the queue: rows with ``source == "review"``
and any (level, key, task) with a non-skip decision in ``adjudications`` (``breast_labels`` keeps
the mined value; the decision is applied when ``image_labels`` is built). Missing labels (null)
only enter when they carry a conflict, unless ``include_missing``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from curation.schemas import REVIEW_QUEUE_SCHEMA
from curation.tasks import BREAST_TASKS, IMAGE_TASKS, LABEL_TASKS, ConflictKind
from review_app.queue_context import PATHOLOGY_SOURCES  # noqa: F401  (re-exported)
from review_app.queue_context import (evidence_span, hanging, image_entry, image_table, is_missing, label_str,
                                      model_opinion, require_columns)

REASON_TIER: dict[str, int] = {
    "report_vs_pathology": 0,
    "unattached_pathology": 0,
    "two_readers": 1,
    "report_vs_dicom_tag": 1,
    "dicom_tag_conflict": 1,
    "orientation_disagreement": 1,
    "label_conflict": 1,
    "model_disagreement": 2,
    "high_uncertainty": 3,
}
REVIEW_SOURCE = "review"
# report_mentions.type that can carry each task's evidence (label_mining/schemas.py)
_TASK_ORDER = {t: i for i, t in enumerate(LABEL_TASKS)}

QUEUE_SCHEMA = REVIEW_QUEUE_SCHEMA
QUEUE_COLUMNS = QUEUE_SCHEMA.names

_LABEL_COLUMNS = ("task", "label", "u", "source", "rule_id", "evidence", "conflict", "batch")


@dataclass(frozen=True)
class QueueConfig:
    u_threshold: float = 0.5
    """Labels with u >= this are queued (u in [0, 1]; 1 = no information)."""
    model_disagreement: float = 0.9
    """Queue a label when the model gives at least this probability to a different class."""
    include_missing: bool = False
    """Also queue missing (null) labels that have no conflict — labelling from scratch."""
    max_items: int | None = None
    """Keep only the first N items after ordering (None = all)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.u_threshold <= 1.0:
            raise ValueError(f"QueueConfig.u_threshold must be in [0, 1], got {self.u_threshold}")
        if not 0.5 < self.model_disagreement <= 1.0:
            raise ValueError("QueueConfig.model_disagreement must be in (0.5, 1] so that the model's class "
                             f"is its most likely one, got {self.model_disagreement}")
        if self.max_items is not None and self.max_items < 1:
            raise ValueError(f"QueueConfig.max_items must be >= 1 or None, got {self.max_items}")


def item_key(target_level: str, target_key: str, task: str) -> str:
    return f"{target_level}|{target_key}|{task}"


# ConflictKind (curation/tasks.py, written by the label miner) -> queue reason
KIND_REASON: dict[str, str] = {
    ConflictKind.REPORT_VS_PATHOLOGY: "report_vs_pathology",
    ConflictKind.TABLE_VS_PATHOLOGY: "report_vs_pathology",   # labels.csv vs tissue: pathology tier
    ConflictKind.UNATTACHED_PATHOLOGY: "unattached_pathology",
    ConflictKind.TWO_READERS: "two_readers",
    ConflictKind.REPORT_VS_DICOM_TAG: "report_vs_dicom_tag",
    ConflictKind.DICOM_TAG_CONFLICT: "dicom_tag_conflict",
    ConflictKind.TABLE_VS_REPORT: "label_conflict",
    ConflictKind.ADDENDUM_REVISION: "label_conflict",
    ConflictKind.CONFLICTING_STATEMENTS: "label_conflict",
    ConflictKind.OTHER: "label_conflict",
}
if set(KIND_REASON) != set(ConflictKind):  # a new conflict kind must get a tier
    raise RuntimeError(f"KIND_REASON misses conflict kinds {set(ConflictKind) - set(KIND_REASON)}")


def conflict_reason(kind: object) -> str:
    """The queue reason of a flagged row's ``conflict_kind``; an unknown value is refused, not guessed."""
    if isinstance(kind, str) and kind in KIND_REASON:
        return KIND_REASON[kind]
    if is_missing(kind):
        return "label_conflict"  # conflict flagged without a kind: reviewed, at the generic tier
    raise ValueError(f"conflict_kind {kind!r} is not a curation.tasks.ConflictKind value "
                     f"({sorted(k.value for k in ConflictKind)})")


def legacy_conflict_reason(rule_id: object, source: object) -> str:
    """Fallback for label tables written before ``conflict_kind`` existed: the old rule-id reading.

    Used only when the table has no ``conflict_kind`` column, and announced in the queue notes.
    """
    rule = rule_id.lower() if isinstance(rule_id, str) else ""
    src = source.lower() if isinstance(source, str) else ""
    if "readers_disagree" in rule:
        return "two_readers"
    if src in PATHOLOGY_SOURCES:
        return "report_vs_pathology"
    if src == "dicom_tag":
        return "dicom_tag_conflict"
    return "label_conflict"


def build_queue(breast_labels: pd.DataFrame, image_labels: pd.DataFrame, *,
                catalog: pd.DataFrame | None = None, index: pd.DataFrame | None = None,
                predictions: pd.DataFrame | None = None, mentions: pd.DataFrame | None = None,
                adjudications: pd.DataFrame | None = None, config: QueueConfig = QueueConfig()) -> pd.DataFrame:
    """The review queue (columns :data:`QUEUE_COLUMNS`), ordered, ``priority`` = 1, 2, …

    ``breast_labels``/``image_labels`` follow CONTRACTS.md plus a ``batch`` column; ``catalog``
    and the preprocessing ``index`` give each image its view, cache path and orientation flag;
    ``predictions`` (``model.predict`` output) enables the model-disagreement reason;
    ``adjudications`` (``labels/adjudications.parquet``) removes labels a person already decided.
    """
    require_columns(breast_labels, "breast_labels", ["breast_key", "accession_key", *_LABEL_COLUMNS])
    require_columns(image_labels, "image_labels", ["image_key", "breast_key", *_LABEL_COLUMNS])
    # tables written before conflict_kind existed fall back to the rule-id reading (see docs)
    has_kind = {"breast": "conflict_kind" in breast_labels.columns, "image": "conflict_kind" in image_labels.columns}
    images = image_table(image_labels, catalog, index)
    images_of_breast = {k: g for k, g in images.groupby("breast_key", sort=False)}
    exams, prior_of = hanging(images)
    image_row = images.set_index("image_key", drop=False)
    pred_by_image: dict[str, pd.DataFrame] = {}
    if predictions is not None and len(predictions):
        require_columns(predictions, "predictions", ["image_key"])
        pred_by_image = {k: g for k, g in predictions.groupby("image_key", sort=False)}
    mentions_by_acc = None
    if mentions is not None and len(mentions) and "accession_key" in mentions.columns:
        mentions_by_acc = mentions

    candidates = []
    breast = breast_labels[breast_labels["task"].isin(BREAST_TASKS)]
    for row in breast.itertuples(index=False):
        imgs = images_of_breast.get(row.breast_key)
        candidates.append(("breast", row.breast_key, row, imgs if imgs is not None else images.iloc[0:0],
                           row.accession_key))
    flagged_images = set(images.loc[images["orientation_disagreement"], "image_key"])
    image_rows = image_labels[image_labels["task"].isin(IMAGE_TASKS)
                              | image_labels["image_key"].isin(flagged_images)]
    for row in image_rows.itertuples(index=False):
        imgs = image_row.loc[[row.image_key]] if row.image_key in image_row.index else images.iloc[0:0]
        acc = imgs["accession_key"].iloc[0] if len(imgs) else None
        if is_missing(acc) and isinstance(row.breast_key, str) and ":" in row.breast_key:
            acc = row.breast_key.rsplit(":", 1)[0]  # breast_key = accession_key:laterality (CONTRACTS)
        candidates.append(("image", row.image_key, row, imgs, acc))

    decided: set[tuple[str, str, str]] = set()
    if adjudications is not None and len(adjudications):
        require_columns(adjudications, "adjudications", ["target_level", "target_key", "task", "decision"])
        done = adjudications[adjudications["decision"] != "skip"]
        decided = set(zip(done["target_level"], done["target_key"], done["task"]))

    items = []
    for level, target, row, imgs, acc in candidates:
        if getattr(row, "source", None) == REVIEW_SOURCE or (level, target, row.task) in decided:
            continue
        label = label_str(row.label)
        u = None if is_missing(row.u) else float(row.u)
        conflict = bool(row.conflict) if not is_missing(row.conflict) else False
        reasons = set()
        if conflict:
            reasons.add(conflict_reason(row.conflict_kind) if has_kind[level]
                        else legacy_conflict_reason(row.rule_id, row.source))
        if label is None and not conflict and not config.include_missing:
            continue
        if u is not None and u >= config.u_threshold and label is not None:
            reasons.add("high_uncertainty")
        if label is None and config.include_missing:
            reasons.add("high_uncertainty")
        if level == "image" and bool(imgs["orientation_disagreement"].any()):
            reasons.add("orientation_disagreement")
        if row.task == "view" and bool(imgs["view_conflict"].any()):
            reasons.add("dicom_tag_conflict")
        image_keys = list(imgs["image_key"])
        model_label, model_p, p_label = model_opinion(pred_by_image, row.task, image_keys, label)
        if (label is not None and model_label is not None and model_label != label
                and model_p >= config.model_disagreement):
            reasons.add("model_disagreement")
        if not reasons:
            continue
        laterality = row.breast_key[-1] if isinstance(row.breast_key, str) and ":" in row.breast_key else None
        span_start, span_end, report_row, related_spans = evidence_span(
            mentions_by_acc, acc, row.task, laterality, row.evidence, label,
            None if is_missing(row.source) else str(row.source))
        targets = set(imgs["image_key"])
        if level == "breast" and not is_missing(acc) and acc in exams:
            # hanging protocol: the exam's four views (this breast's marked), then the prior exam
            shown = [image_entry(r, "current", r.image_key in targets) for r in exams[acc].itertuples(index=False)]
            if acc in prior_of:
                shown += [image_entry(r, "prior", False) for r in exams[prior_of[acc]].itertuples(index=False)]
        else:
            shown = [image_entry(r, "current", True) for r in imgs.itertuples(index=False)]
        images_json = json.dumps(shown, sort_keys=True)
        items.append({
            "item_key": item_key(level, target, row.task), "target_level": level, "target_key": target,
            "task": row.task, "batch": row.batch, "breast_key": row.breast_key,
            "accession_key": None if is_missing(acc) else acc, "label": label, "u": u,
            "source": None if is_missing(row.source) else str(row.source),
            "rule_id": None if is_missing(row.rule_id) else str(row.rule_id),
            "evidence": None if is_missing(row.evidence) else str(row.evidence),
            "span_start": span_start, "span_end": span_end, "report_row": report_row,
            "related_spans": related_spans,
            "reasons": ";".join(sorted(reasons, key=lambda r: (REASON_TIER[r], r))),
            "tier": min(REASON_TIER[r] for r in reasons), "n_reasons": len(reasons),
            "model_label": model_label, "model_p_label": p_label, "images_json": images_json,
        })
    if not items:
        return pd.DataFrame({name: pd.Series(dtype=_dtype(QUEUE_SCHEMA.field(name).type))
                             for name in QUEUE_COLUMNS})
    queue = pd.DataFrame(items).drop_duplicates("item_key", keep="first")
    queue["_u"] = queue["u"].fillna(1.0)
    queue["_task"] = queue["task"].map(_TASK_ORDER)
    queue = queue.sort_values(["tier", "n_reasons", "_u", "_task", "target_level", "target_key"],
                              ascending=[True, False, False, True, True, True], kind="mergesort")
    # one review item per target (review_app.targets): targets ordered by their most urgent task,
    # a target's tasks consecutive, so the annotator decides them all on one page
    rank = pd.Series(np.arange(len(queue)), index=queue.index)
    queue["_target_rank"] = rank.groupby([queue["target_level"], queue["target_key"]]).transform("min")
    queue = queue.assign(_rank=rank).sort_values(["_target_rank", "_rank"], kind="mergesort")
    if config.max_items is not None:
        queue = queue.head(config.max_items)
    queue["priority"] = np.arange(1, len(queue) + 1, dtype="int32")
    queue["span_start"] = queue["span_start"].astype("Int64")
    queue["span_end"] = queue["span_end"].astype("Int64")
    queue["report_row"] = queue["report_row"].astype("Int64")
    queue["tier"] = queue["tier"].astype("int8")
    return queue[QUEUE_COLUMNS].reset_index(drop=True)


def _dtype(arrow_type: pa.DataType) -> str:
    if pa.types.is_integer(arrow_type):
        return "Int64"
    if pa.types.is_floating(arrow_type):
        return "float64"
    return "object"


def to_arrow(queue: pd.DataFrame) -> pa.Table:
    """The queue as an Arrow table with the fixed :data:`QUEUE_SCHEMA` (byte-stable Parquet)."""
    return pa.Table.from_pandas(queue[QUEUE_COLUMNS], schema=QUEUE_SCHEMA, preserve_index=False)
