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
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from curation.schemas import REVIEW_QUEUE_SCHEMA
from curation.tasks import BREAST_TASKS, IMAGE_TASKS, LABEL_TASKS, TASKS, ConflictKind

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
PATHOLOGY_SOURCES = ("biopsy", "surgery", "follow_up", "pathology")
# report_mentions.type that can carry each task's evidence (label_mining/schemas.py)
MENTION_TYPES = {"acr": ("assessment",), "breastbin": ("pathology", "assessment"), "density": ("density",)}
_TASK_ORDER = {t: i for i, t in enumerate(LABEL_TASKS)}
_VIEW_ORDER = {"CC": 0, "MLO": 1, "ML": 2}

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
    if _is_missing(kind):
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


def _require(df: pd.DataFrame, name: str, columns) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {missing}; has {sorted(df.columns)}")


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _label_str(value) -> str | None:
    if _is_missing(value):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _image_table(image_labels: pd.DataFrame, catalog: pd.DataFrame | None,
                 index: pd.DataFrame | None) -> pd.DataFrame:
    """image_key -> breast_key, accession_key, view, laterality, cache_path, orientation flag."""
    parts = [image_labels[["image_key", "breast_key"]]]
    cols = ["image_key", "breast_key", "accession_key", "view", "laterality", "view_conflict", "patient_pid",
            "study_date"]
    if catalog is not None and len(catalog):
        parts.insert(0, catalog[[c for c in cols if c in catalog.columns]])
    images = pd.concat(parts, ignore_index=True).drop_duplicates("image_key", keep="first")
    for col in cols:
        if col not in images.columns:
            images[col] = None
    if index is not None and len(index):
        _require(index, "preprocessing index", ["image_key", "cache_path"])
        extra = [c for c in ("cache_path", "orientation_disagreement", "flipped") if c in index.columns]
        images = images.merge(index[["image_key", *extra]].drop_duplicates("image_key"), on="image_key",
                              how="left")
    for col in ("cache_path", "orientation_disagreement", "flipped"):
        if col not in images.columns:
            images[col] = None
    images["orientation_disagreement"] = images["orientation_disagreement"].fillna(False).astype(bool)
    images["view_conflict"] = images["view_conflict"].fillna(False).astype(bool)
    images["_view_order"] = images["view"].map(_VIEW_ORDER).fillna(9)
    return images.sort_values(["breast_key", "_view_order", "image_key"], kind="mergesort")


_HANG_ORDER = {("R", "CC"): 0, ("L", "CC"): 1, ("R", "MLO"): 2, ("L", "MLO"): 3, ("R", "ML"): 2, ("L", "ML"): 3}


def _hanging(images: pd.DataFrame) -> tuple[dict, dict]:
    """accession -> its images in R-CC, L-CC, R-MLO, L-MLO order; accession -> prior accession
    (same patient, latest earlier study date) — the mammography hanging protocol."""
    known = images.dropna(subset=["accession_key"])
    order = [(_HANG_ORDER.get((lat, view), 9), key) for lat, view, key in
             zip(known["laterality"], known["view"], known["image_key"])]
    known = known.assign(_hang=[o for o, _ in order]).sort_values(["accession_key", "_hang", "image_key"],
                                                                  kind="mergesort")
    exams = {acc: g for acc, g in known.groupby("accession_key", sort=False)}
    prior: dict[str, str] = {}
    studies = known.dropna(subset=["patient_pid", "study_date"]).drop_duplicates("accession_key")
    for _, g in studies.groupby("patient_pid", sort=False):
        g = g.sort_values(["study_date", "accession_key"], kind="mergesort")
        accs, dates = list(g["accession_key"]), list(g["study_date"])
        for n in range(1, len(accs)):
            earlier = [a for a, d in zip(accs[:n], dates[:n]) if d < dates[n]]
            if earlier:
                prior[accs[n]] = earlier[-1]
    return exams, prior


def _image_entry(r, role: str, target: bool) -> dict:
    return {"image_key": r.image_key, "view": None if _is_missing(r.view) else str(r.view),
            "laterality": None if _is_missing(r.laterality) else str(r.laterality),
            "cache_path": None if _is_missing(r.cache_path) else str(r.cache_path),
            "orientation_disagreement": bool(r.orientation_disagreement), "exam": role, "target": target}


def _probabilities(pred: pd.DataFrame, task: str) -> tuple[list[str], np.ndarray] | None:
    classes = [str(c) for c in TASKS[task]]
    if task == "breastbin":
        if "p_breastbin" not in pred.columns:
            return None
        p1 = pred["p_breastbin"].to_numpy(float)
        return classes, np.stack([1 - p1, p1], axis=1)
    if task == "view":
        if "p_view_MLO" not in pred.columns:
            return None
        p = pred["p_view_MLO"].to_numpy(float)
        return classes, np.stack([1 - p, p], axis=1)
    names = [f"p_{task}_{c}" for c in classes]
    if not all(n in pred.columns for n in names):
        return None
    return classes, pred[names].to_numpy(float)


def _model_opinion(pred_by_image: dict[str, pd.DataFrame], task: str, image_keys: list[str],
                   label: str | None) -> tuple[str | None, float | None, float | None]:
    """(model's class, its probability, probability of the proposed label) over the target's images.

    Breast-wise malignancy is the max over the breast's views (paper 3.3); the other tasks
    average the views' class probabilities.
    """
    frames = [pred_by_image[k] for k in image_keys if k in pred_by_image]
    if not frames:
        return None, None, None
    got = _probabilities(pd.concat(frames, ignore_index=True), task)
    if got is None:
        return None, None, None
    classes, probs = got
    if task == "breastbin":
        p1 = float(probs[:, 1].max())
        vector = np.array([1 - p1, p1])
    else:
        vector = probs.mean(axis=0)
    best = int(np.argmax(vector))
    p_label = float(vector[classes.index(label)]) if label in classes else None
    return classes[best], float(vector[best]), p_label


def _span(mentions: pd.DataFrame | None, accession_key, task: str, laterality: str | None,
          evidence, label: str | None, source: str | None = None) -> tuple[int | None, int | None, int | None, str]:
    """(span_start, span_end, report_row, related_spans) of the mention behind a label, from
    report_mentions; ``related_spans`` is JSON ``[[report_row, start, end], …]`` of the other
    candidate mentions (a second reader's category, a range elsewhere in the report).

    Candidates are the study's mentions of the task's type on this breast (or both breasts);
    preferred are those quoted in the label's evidence sentence, then those whose value is the
    label, then the earliest. No candidate -> no span (the page then searches the evidence).
    """
    if mentions is None or not len(mentions) or _is_missing(accession_key) or task not in MENTION_TYPES:
        return None, None, None, "[]"
    rows = mentions[mentions["accession_key"] == accession_key]
    if "type" in rows.columns:
        rows = rows[rows["type"].isin(MENTION_TYPES[task])]
    if laterality in ("L", "R") and "laterality" in rows.columns:
        # this breast's statements, or ones about both breasts — never the other breast's sentence; a
        # side-less statement counts only for density (a property of both breasts)
        same_side = rows["laterality"].isin([laterality, "B"])
        rows = rows[same_side | rows["laterality"].isna()] if task == "density" else rows[same_side]
    rows = rows.dropna(subset=["span_start", "span_end"])
    if not len(rows):
        return None, None, None, "[]"
    text = rows["text"].fillna("").str.lower() if "text" in rows.columns else pd.Series("", index=rows.index)
    sentence = evidence.lower() if isinstance(evidence, str) else ""
    quoted = text.map(lambda t: bool(t) and t in sentence)
    value = rows["value"].fillna("") if "value" in rows.columns else pd.Series("", index=rows.index)
    same = value.map(lambda v: label is not None and str(v).split(",")[0].split("-")[0][:1] == label[:1])
    report_row = rows["report_row"] if "report_row" in rows.columns else pd.Series(0, index=rows.index)
    ranked = rows.assign(_q=~quoted, _v=~same, _r=report_row.fillna(-1)).sort_values(
        ["_q", "_v", "_r", "span_start", "span_end"], kind="mergesort")
    best = ranked.iloc[0]
    row = None if "report_row" not in rows.columns or _is_missing(best["report_row"]) else int(best["report_row"])
    others = sorted({(int(r), int(a), int(b)) for r, a, b in
                     zip(ranked["_r"].iloc[1:], ranked["span_start"].iloc[1:], ranked["span_end"].iloc[1:])})
    if task == "breastbin" and source in PATHOLOGY_SOURCES:
        # a biopsy/surgery/follow-up label's evidence is the pathology row (shown beside the report),
        # never a report sentence: the report's statements on this breast are what it contradicts
        with_best = sorted(set(others) | {(-1 if row is None else row, int(best["span_start"]), int(best["span_end"]))})
        return None, None, None, json.dumps([list(o) for o in with_best])
    return int(best["span_start"]), int(best["span_end"]), row, json.dumps([list(o) for o in others])


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
    _require(breast_labels, "breast_labels", ["breast_key", "accession_key", *_LABEL_COLUMNS])
    _require(image_labels, "image_labels", ["image_key", "breast_key", *_LABEL_COLUMNS])
    # tables written before conflict_kind existed fall back to the rule-id reading (see docs)
    has_kind = {"breast": "conflict_kind" in breast_labels.columns, "image": "conflict_kind" in image_labels.columns}
    images = _image_table(image_labels, catalog, index)
    images_of_breast = {k: g for k, g in images.groupby("breast_key", sort=False)}
    exams, prior_of = _hanging(images)
    image_row = images.set_index("image_key", drop=False)
    pred_by_image: dict[str, pd.DataFrame] = {}
    if predictions is not None and len(predictions):
        _require(predictions, "predictions", ["image_key"])
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
        if _is_missing(acc) and isinstance(row.breast_key, str) and ":" in row.breast_key:
            acc = row.breast_key.rsplit(":", 1)[0]  # breast_key = accession_key:laterality (CONTRACTS)
        candidates.append(("image", row.image_key, row, imgs, acc))

    decided: set[tuple[str, str, str]] = set()
    if adjudications is not None and len(adjudications):
        _require(adjudications, "adjudications", ["target_level", "target_key", "task", "decision"])
        done = adjudications[adjudications["decision"] != "skip"]
        decided = set(zip(done["target_level"], done["target_key"], done["task"]))

    items = []
    for level, target, row, imgs, acc in candidates:
        if getattr(row, "source", None) == REVIEW_SOURCE or (level, target, row.task) in decided:
            continue
        label = _label_str(row.label)
        u = None if _is_missing(row.u) else float(row.u)
        conflict = bool(row.conflict) if not _is_missing(row.conflict) else False
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
        model_label, model_p, p_label = _model_opinion(pred_by_image, row.task, image_keys, label)
        if (label is not None and model_label is not None and model_label != label
                and model_p >= config.model_disagreement):
            reasons.add("model_disagreement")
        if not reasons:
            continue
        laterality = row.breast_key[-1] if isinstance(row.breast_key, str) and ":" in row.breast_key else None
        span_start, span_end, report_row, related_spans = _span(
            mentions_by_acc, acc, row.task, laterality, row.evidence, label,
            None if _is_missing(row.source) else str(row.source))
        targets = set(imgs["image_key"])
        if level == "breast" and not _is_missing(acc) and acc in exams:
            # hanging protocol: the exam's four views (this breast's marked), then the prior exam
            shown = [_image_entry(r, "current", r.image_key in targets) for r in exams[acc].itertuples(index=False)]
            if acc in prior_of:
                shown += [_image_entry(r, "prior", False) for r in exams[prior_of[acc]].itertuples(index=False)]
        else:
            shown = [_image_entry(r, "current", True) for r in imgs.itertuples(index=False)]
        images_json = json.dumps(shown, sort_keys=True)
        items.append({
            "item_key": item_key(level, target, row.task), "target_level": level, "target_key": target,
            "task": row.task, "batch": row.batch, "breast_key": row.breast_key,
            "accession_key": None if _is_missing(acc) else acc, "label": label, "u": u,
            "source": None if _is_missing(row.source) else str(row.source),
            "rule_id": None if _is_missing(row.rule_id) else str(row.rule_id),
            "evidence": None if _is_missing(row.evidence) else str(row.evidence),
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
