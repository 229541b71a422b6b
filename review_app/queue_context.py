"""What a review item shows beside its label — pure pandas, no I/O: the exam's images in hanging
order (R-CC, L-CC, R-MLO, L-MLO, the prior beside them), a trained model's opinion, and the exact
report span that produced the label (character offsets from the mention, the item's own breast)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from curation.tasks import TASKS

PATHOLOGY_SOURCES = ("biopsy", "surgery", "follow_up", "pathology")
MENTION_TYPES = {"acr": ("assessment",), "breastbin": ("pathology", "assessment"), "density": ("density",)}
VIEW_ORDER = {"CC": 0, "MLO": 1, "ML": 2}


def require_columns(df: pd.DataFrame, name: str, columns) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {missing}; has {sorted(df.columns)}")


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def label_str(value) -> str | None:
    if is_missing(value):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def image_table(image_labels: pd.DataFrame, catalog: pd.DataFrame | None,
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
        require_columns(index, "preprocessing index", ["image_key", "cache_path"])
        extra = [c for c in ("cache_path", "orientation_disagreement", "flipped") if c in index.columns]
        images = images.merge(index[["image_key", *extra]].drop_duplicates("image_key"), on="image_key",
                              how="left")
    for col in ("cache_path", "orientation_disagreement", "flipped"):
        if col not in images.columns:
            images[col] = None
    images["orientation_disagreement"] = images["orientation_disagreement"].fillna(False).astype(bool)
    images["view_conflict"] = images["view_conflict"].fillna(False).astype(bool)
    images["_view_order"] = images["view"].map(VIEW_ORDER).fillna(9)
    return images.sort_values(["breast_key", "_view_order", "image_key"], kind="mergesort")


_HANG_ORDER = {("R", "CC"): 0, ("L", "CC"): 1, ("R", "MLO"): 2, ("L", "MLO"): 3, ("R", "ML"): 2, ("L", "ML"): 3}


def hanging(images: pd.DataFrame) -> tuple[dict, dict]:
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


def image_entry(r, role: str, target: bool) -> dict:
    return {"image_key": r.image_key, "view": None if is_missing(r.view) else str(r.view),
            "laterality": None if is_missing(r.laterality) else str(r.laterality),
            "cache_path": None if is_missing(r.cache_path) else str(r.cache_path),
            "orientation_disagreement": bool(r.orientation_disagreement), "exam": role, "target": target}


def class_probabilities(pred: pd.DataFrame, task: str) -> tuple[list[str], np.ndarray] | None:
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


def model_opinion(pred_by_image: dict[str, pd.DataFrame], task: str, image_keys: list[str],
                   label: str | None) -> tuple[str | None, float | None, float | None]:
    """(model's class, its probability, probability of the proposed label) over the target's images.

    Breast-wise malignancy is the max over the breast's views (paper 3.3); the other tasks
    average the views' class probabilities.
    """
    frames = [pred_by_image[k] for k in image_keys if k in pred_by_image]
    if not frames:
        return None, None, None
    got = class_probabilities(pd.concat(frames, ignore_index=True), task)
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


def evidence_span(mentions: pd.DataFrame | None, accession_key, task: str, laterality: str | None,
          evidence, label: str | None, source: str | None = None) -> tuple[int | None, int | None, int | None, str]:
    """(span_start, span_end, report_row, related_spans) of the mention behind a label, from
    report_mentions; ``related_spans`` is JSON ``[[report_row, start, end], …]`` of the other
    candidate mentions (a second reader's category, a range elsewhere in the report).

    Candidates are the study's mentions of the task's type on this breast (or both breasts);
    preferred are those quoted in the label's evidence sentence, then those whose value is the
    label, then the earliest. No candidate -> no span (the page then searches the evidence).
    """
    if mentions is None or not len(mentions) or is_missing(accession_key) or task not in MENTION_TYPES:
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
    row = None if "report_row" not in rows.columns or is_missing(best["report_row"]) else int(best["report_row"])
    others = sorted({(int(r), int(a), int(b)) for r, a, b in
                     zip(ranked["_r"].iloc[1:], ranked["span_start"].iloc[1:], ranked["span_end"].iloc[1:])})
    if task == "breastbin" and source in PATHOLOGY_SOURCES:
        # a biopsy/surgery/follow-up label's evidence is the pathology row (shown beside the report),
        # never a report sentence: the report's statements on this breast are what it contradicts
        with_best = sorted(set(others) | {(-1 if row is None else row, int(best["span_start"]), int(best["span_end"]))})
        return None, None, None, json.dumps([list(o) for o in with_best])
    return int(best["span_start"]), int(best["span_end"]), row, json.dumps([list(o) for o in others])
