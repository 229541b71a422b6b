"""Evaluation metrics of the paper (sections 3.3 and 4), as pure functions over predictions.

* Breast cancer (``breastbin``) and view: ROC AUC, image-wise and breast-wise. A breast's score is
  the **maximum** over its views (a lesion seen on one view suffices to call the breast malignant),
  and its label the maximum over its images' labels.
* ACR and density: weighted (class-balanced) accuracy, because the classes are heavily imbalanced.
* Strata: density A–D (breast-wise, density is a property of the breast) and view CC/MLO (image-wise,
  a view is a property of the image).
* Operating points: sensitivity/specificity at p > 0.5, specificity at 95 % sensitivity (the triage
  scenario of the paper), and the threshold with the best Matthews correlation coefficient.
* Uncertainty of an AUC: percentile bootstrap 95 % CI; comparison of two models scored on the same
  cases: DeLong's paired test (DeLong, DeLong & Clarke-Pearson 1988, in the fast O(n log n) form of
  Sun & Xu 2014).

No TensorFlow and no Dagster here: the evaluation asset runs this in the code server.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, roc_auc_score

from curation.tasks import TASKS, class_index

DEFAULT_BOOTSTRAP = 1000
DENSITY_CLASSES = tuple(TASKS["density"])
VIEW_CLASSES = tuple(TASKS["view"])


# ----------------------------------------------------------------------------------------------
# AUC, bootstrap CI, DeLong
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AUCResult:
    """An AUC with its percentile-bootstrap CI; ``auc`` is NaN when a class is absent."""

    auc: float
    ci_low: float
    ci_high: float
    n_pos: int
    n_neg: int

    @property
    def ci(self) -> list[float]:
        return [self.ci_low, self.ci_high]


def _as_binary(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=float)
    s = np.asarray(y_score, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and scores {s.shape} must be 1-D arrays of the same length")
    keep = ~(np.isnan(y) | np.isnan(s))
    y, s = y[keep], s[keep]
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"binary labels must be 0 or 1, got {sorted(set(y.tolist()) - {0.0, 1.0})[:5]}")
    return y.astype(int), s


def _rank_auc(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC along the last axis (ties count 1/2); works on a stack of resamples."""
    ranks = stats.rankdata(s, axis=-1)
    n_pos = y.sum(axis=-1)
    n_neg = y.shape[-1] - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((ranks * y).sum(axis=-1) - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def auc_with_ci(y_true, y_score, *, n_bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                level: float = 0.95) -> AUCResult:
    """ROC AUC with a percentile bootstrap CI (cases resampled with replacement; a resample that
    lost a class has no AUC and is skipped). Missing labels/scores are dropped."""
    y, s = _as_binary(y_true, y_score)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    if n_pos == 0 or n_neg == 0:
        return AUCResult(float("nan"), float("nan"), float("nan"), n_pos, n_neg)
    auc = float(roc_auc_score(y, s))
    if n_bootstrap <= 0:
        return AUCResult(auc, float("nan"), float("nan"), n_pos, n_neg)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n_bootstrap, len(y)))
    boots = _rank_auc(y[idx], s[idx])
    boots = boots[np.isfinite(boots)]
    if len(boots) == 0:
        return AUCResult(auc, float("nan"), float("nan"), n_pos, n_neg)
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(boots, [tail, 100.0 - tail])
    return AUCResult(auc, float(lo), float(hi), n_pos, n_neg)


@dataclass(frozen=True)
class DeLongResult:
    auc_a: float
    auc_b: float
    var_a: float
    var_b: float
    covariance: float
    z: float
    p_value: float


def _midrank(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their mean rank (the 'midrank' of DeLong's structural components)."""
    return stats.rankdata(x, method="average")


def delong_components(y_true, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs and the structural components V10 (per positive) and V01 (per negative) of each row of
    ``scores`` (shape ``(k, n)``), by the midrank identities of Sun & Xu (2014)."""
    y = np.asarray(y_true).astype(int)
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    if m == 0 or n == 0:
        raise ValueError("DeLong needs at least one positive and one negative case")
    aucs, v10, v01 = [], [], []
    for k in range(scores.shape[0]):
        tx, ty = _midrank(pos[k]), _midrank(neg[k])
        tz = _midrank(np.concatenate([pos[k], neg[k]]))
        aucs.append((tz[:m].sum() - m * (m + 1) / 2.0) / (m * n))
        # V10_i = P(score_i > random negative) (+1/2 ties); V01_j = P(random positive > score_j)
        v10.append((tz[:m] - tx) / n)
        v01.append(1.0 - (tz[m:] - ty) / m)
    return np.array(aucs), np.array(v10), np.array(v01)


def delong_test(y_true, score_a, score_b) -> DeLongResult:
    """Two-sided DeLong test that two models scored on the *same* cases have equal AUC."""
    y, sa = _as_binary(y_true, score_a)
    y2, sb = _as_binary(y_true, score_b)
    if len(sa) != len(sb) or not np.array_equal(y, y2):
        raise ValueError("DeLong's paired test needs both models scored on the same cases (no missing scores)")
    aucs, v10, v01 = delong_components(y, np.vstack([sa, sb]))
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.atleast_2d(np.cov(v10)) if m > 1 else np.zeros((2, 2))
    s01 = np.atleast_2d(np.cov(v01)) if n > 1 else np.zeros((2, 2))
    cov = s10 / m + s01 / n
    var_diff = cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1]
    diff = aucs[0] - aucs[1]
    if var_diff <= 1e-15:
        z = 0.0 if abs(diff) < 1e-12 else math.copysign(math.inf, diff)
    else:
        z = diff / math.sqrt(var_diff)
    p = float(2.0 * stats.norm.sf(abs(z)))
    return DeLongResult(float(aucs[0]), float(aucs[1]), float(cov[0, 0]), float(cov[1, 1]),
                        float(cov[0, 1]), float(z), p)


def delong_variance(y_true, y_score) -> float:
    """DeLong's variance of one AUC (used by the tests against the definition)."""
    y, s = _as_binary(y_true, y_score)
    _, v10, v01 = delong_components(y, s[None, :])
    m, n = v10.shape[1], v01.shape[1]
    return float(np.var(v10[0], ddof=1) / m + np.var(v01[0], ddof=1) / n)


# ----------------------------------------------------------------------------------------------
# Operating points
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    sensitivity: float
    specificity: float
    mcc: float


def _mcc(tp, fp, tn, fn) -> np.ndarray:
    tp, fp, tn, fn = (np.asarray(v, dtype=float) for v in (tp, fp, tn, fn))
    denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (tp * tn - fp * fn) / denom
    return np.where(denom > 0, out, 0.0)


def operating_point(y_true, y_score, threshold: float = 0.5) -> OperatingPoint:
    """Sensitivity, specificity and MCC when calling ``score > threshold`` malignant."""
    y, s = _as_binary(y_true, y_score)
    pred = s > threshold
    tp = int((pred & (y == 1)).sum()); fn = int((~pred & (y == 1)).sum())
    fp = int((pred & (y == 0)).sum()); tn = int((~pred & (y == 0)).sum())
    sens = tp / (tp + fn) if tp + fn else float("nan")
    spec = tn / (tn + fp) if tn + fp else float("nan")
    return OperatingPoint(float(threshold), sens, spec, float(_mcc(tp, fp, tn, fn)))


def _threshold_sweep(y: np.ndarray, s: np.ndarray):
    """Confusion counts when calling ``score >= t`` malignant, for every distinct score t
    (descending), plus the all-benign point first."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    distinct = np.r_[np.diff(s_sorted) != 0, True]
    tp = np.cumsum(y_sorted)[distinct]
    fp = np.cumsum(1 - y_sorted)[distinct]
    thresholds = s_sorted[distinct]
    P, N = y.sum(), len(y) - y.sum()
    tp = np.r_[0, tp]; fp = np.r_[0, fp]
    thresholds = np.r_[np.inf, thresholds]
    return thresholds, tp, fp, P - tp, N - fp


def specificity_at_sensitivity(y_true, y_score, target: float = 0.95) -> OperatingPoint:
    """The most specific threshold whose sensitivity is at least ``target`` (triage: how many
    benign cases could be set aside while missing at most 5 % of cancers)."""
    y, s = _as_binary(y_true, y_score)
    if y.sum() == 0 or y.sum() == len(y):
        return OperatingPoint(float("nan"), float("nan"), float("nan"), float("nan"))
    thr, tp, fp, fn, tn = _threshold_sweep(y, s)
    sens = tp / (tp + fn)
    spec = tn / (tn + fp)
    ok = np.flatnonzero(sens >= target - 1e-12)
    i = ok[np.argmax(spec[ok])]
    return OperatingPoint(float(thr[i]), float(sens[i]), float(spec[i]), float(_mcc(tp[i], fp[i], tn[i], fn[i])))


def best_mcc(y_true, y_score) -> OperatingPoint:
    """The threshold (``score >= t``) maximising the Matthews correlation coefficient."""
    y, s = _as_binary(y_true, y_score)
    if y.sum() == 0 or y.sum() == len(y):
        return OperatingPoint(float("nan"), float("nan"), float("nan"), float("nan"))
    thr, tp, fp, fn, tn = _threshold_sweep(y, s)
    mcc = _mcc(tp, fp, tn, fn)
    i = int(np.argmax(mcc))
    return OperatingPoint(float(thr[i]), float(tp[i] / (tp[i] + fn[i])), float(tn[i] / (tn[i] + fp[i])), float(mcc[i]))


# ----------------------------------------------------------------------------------------------
# Multi-class: weighted (balanced) accuracy
# ----------------------------------------------------------------------------------------------
def class_probability_columns(task: str) -> list[str]:
    """Prediction columns of ``model.predict`` for a multi-class task, in class order."""
    return [f"p_{task}_{c}" for c in TASKS[task]]


def true_class_indices(task: str, labels: Iterable) -> np.ndarray:
    """Class index per label, -1 when missing."""
    return np.array([(-1 if (i := class_index(task, v)) is None else i) for v in labels], dtype=int)


def weighted_accuracy(y_true_idx, y_pred_idx) -> float:
    """Balanced accuracy = mean per-class recall over the classes present in the truth."""
    y = np.asarray(y_true_idx); p = np.asarray(y_pred_idx)
    keep = y >= 0
    if keep.sum() == 0:
        return float("nan")
    with warnings.catch_warnings():
        # a model predicting a class absent from this test set is expected (e.g. ACR 6 on inb)
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(y[keep], p[keep]))


def predicted_classes(preds: pd.DataFrame, task: str) -> np.ndarray:
    cols = class_probability_columns(task)
    missing = [c for c in cols if c not in preds.columns]
    if missing:
        raise KeyError(f"predictions lack {missing} for task {task!r}")
    return preds[cols].to_numpy(dtype=float).argmax(axis=1)


def task_confusion_matrix(preds: pd.DataFrame, task: str) -> np.ndarray:
    y = true_class_indices(task, preds[task])
    p = predicted_classes(preds, task)
    keep = y >= 0
    return confusion_matrix(y[keep], p[keep], labels=list(range(len(TASKS[task]))))


# ----------------------------------------------------------------------------------------------
# Image-wise vs breast-wise
# ----------------------------------------------------------------------------------------------
def breast_level(preds: pd.DataFrame, score: str = "p_breastbin", label: str = "breastbin") -> pd.DataFrame:
    """One row per breast: max score over its views, max label over its images (NaN if all missing),
    and the breast's density (most frequent non-missing value)."""
    if "breast_key" not in preds.columns:
        raise KeyError("predictions need a breast_key column for breast-wise metrics")
    df = preds[["breast_key", score, label] + (["density"] if "density" in preds.columns else [])].copy()
    df[label] = pd.to_numeric(df[label], errors="coerce")
    agg = {score: "max", label: "max"}
    out = df.groupby("breast_key", sort=True).agg(agg)
    if "density" in df.columns:
        dens = (df.dropna(subset=["density"]).assign(density=lambda d: d["density"].astype(str).str.upper())
                .groupby("breast_key")["density"].agg(lambda v: v.value_counts().sort_index().idxmax()))
        out["density"] = dens
    return out.reset_index()


def _binary_labels(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)


def _view_labels(series: pd.Series) -> np.ndarray:
    idx = true_class_indices("view", series)
    return np.where(idx < 0, np.nan, idx.astype(float))


def _auc_entry(y, s, *, n_bootstrap: int, seed: int) -> dict:
    r = auc_with_ci(y, s, n_bootstrap=n_bootstrap, seed=seed)
    return {"auc": _clean(r.auc), "auc_ci": [_clean(r.ci_low), _clean(r.ci_high)], "n_pos": r.n_pos, "n_neg": r.n_neg}


def _clean(x):
    """JSON-safe float: NaN/inf -> None, rounded to 6 decimals so reruns diff cleanly."""
    if x is None:
        return None
    x = float(x)
    return None if not math.isfinite(x) else round(x, 6)


def _delong_p(y, a, b) -> float | None:
    """DeLong p-value of a vs b on the cases where all three are present; None when undefined."""
    y = np.asarray(y, dtype=float); a = np.asarray(a, dtype=float); b = np.asarray(b, dtype=float)
    keep = np.isfinite(y) & np.isfinite(a) & np.isfinite(b)
    y, a, b = y[keep], a[keep], b[keep]
    if len(y) < 3 or y.min() == y.max():
        return None
    return _clean(delong_test(y, a, b).p_value)


def evaluate_predictions(preds: pd.DataFrame, *, n_bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                         reference: pd.DataFrame | None = None) -> dict:
    """All metrics of one model on one test set.

    ``preds`` is ``model.predict`` output joined with the manifest's truth columns (``breastbin``,
    ``acr``, ``density``, ``view``). ``reference`` (the proposed MTL model on the same images) adds
    DeLong p-values against it: overall breast-wise (``p_value_vs_reference``), image-wise, and per
    stratum. Keys ending in ``_ci`` are ``[lo, hi]``; NaN becomes None so the result is strict JSON.
    """
    out: dict = {"n_images": int(len(preds))}
    has_bin = "p_breastbin" in preds.columns and "breastbin" in preds.columns
    if has_bin:
        frame = preds.copy()
        if reference is not None:
            ref = reference[["image_key", "p_breastbin"]].rename(columns={"p_breastbin": "p_ref"})
            frame = frame.merge(ref, on="image_key", how="left", validate="one_to_one")
        else:
            frame["p_ref"] = np.nan
        y_img = _binary_labels(frame["breastbin"])
        s_img = frame["p_breastbin"].to_numpy(dtype=float)
        r_img = frame["p_ref"].to_numpy(dtype=float)
        img = _auc_entry(y_img, s_img, n_bootstrap=n_bootstrap, seed=seed)
        out.update(image_breastbin_auc=img["auc"], image_breastbin_auc_ci=img["auc_ci"])
        breasts = breast_level(frame)
        if reference is not None:
            breasts = breasts.merge(frame.groupby("breast_key", as_index=False)["p_ref"].max(), on="breast_key")
        yb = _binary_labels(breasts["breastbin"])
        sb = breasts["p_breastbin"].to_numpy(dtype=float)
        rb = breasts["p_ref"].to_numpy(dtype=float) if "p_ref" in breasts else np.full(len(yb), np.nan)
        br = _auc_entry(yb, sb, n_bootstrap=n_bootstrap, seed=seed)
        out.update(breastbin_auc=br["auc"], breastbin_auc_ci=br["auc_ci"], n_breasts=int(np.isfinite(yb).sum()),
                   n_malignant_breasts=br["n_pos"])
        keep = np.isfinite(yb)
        if keep.any() and 0 < yb[keep].sum() < keep.sum():
            at05 = operating_point(yb[keep], sb[keep], 0.5)
            tri = specificity_at_sensitivity(yb[keep], sb[keep], 0.95)
            mcc = best_mcc(yb[keep], sb[keep])
            out.update(sensitivity_at_0_5=_clean(at05.sensitivity), specificity_at_0_5=_clean(at05.specificity),
                       mcc_at_0_5=_clean(at05.mcc),
                       specificity_at_95_sensitivity=_clean(tri.specificity),
                       sensitivity_at_95_target=_clean(tri.sensitivity),
                       threshold_at_95_sensitivity=_clean(tri.threshold),
                       best_mcc=_clean(mcc.mcc), best_mcc_threshold=_clean(mcc.threshold),
                       best_mcc_sensitivity=_clean(mcc.sensitivity), best_mcc_specificity=_clean(mcc.specificity))
        strata: dict = {"density": {}, "view": {}}
        if "density" in breasts.columns:
            for d in DENSITY_CLASSES:
                sel = (breasts["density"] == d).to_numpy()
                entry = _auc_entry(yb[sel], sb[sel], n_bootstrap=n_bootstrap, seed=seed)
                if reference is not None:
                    entry["p_value_vs_reference"] = _delong_p(yb[sel], sb[sel], rb[sel])
                strata["density"][d] = entry
        if "view" in frame.columns:
            views = _view_labels(frame["view"])
            for k, v in enumerate(VIEW_CLASSES):
                sel = views == k
                entry = _auc_entry(y_img[sel], s_img[sel], n_bootstrap=n_bootstrap, seed=seed)
                if reference is not None:
                    entry["p_value_vs_reference"] = _delong_p(y_img[sel], s_img[sel], r_img[sel])
                strata["view"][v] = entry
        out["strata"] = strata
        if reference is not None:
            out["p_value_vs_reference"] = _delong_p(yb, sb, rb)
            out["image_p_value_vs_reference"] = _delong_p(y_img, s_img, r_img)
    if "p_view_MLO" in preds.columns and "view" in preds.columns:
        v = _auc_entry(_view_labels(preds["view"]), preds["p_view_MLO"], n_bootstrap=n_bootstrap, seed=seed)
        out.update(view_auc=v["auc"], view_auc_ci=v["auc_ci"])
    for task, key in (("acr", "acr_wacc"), ("density", "density_wacc")):
        cols = class_probability_columns(task)
        if task in preds.columns and all(c in preds.columns for c in cols):
            y = true_class_indices(task, preds[task])
            out[key] = _clean(weighted_accuracy(y, predicted_classes(preds, task)))
            out[f"n_{task}_labelled"] = int((y >= 0).sum())
    return out


# ----------------------------------------------------------------------------------------------
# Summaries across seeds / epochs, evaluation.json
# ----------------------------------------------------------------------------------------------
def mean_sd(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample sd over runs (seeds or top epochs); sd is 0 for a single run."""
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def write_evaluation_json(path: Path, models: Mapping[str, Mapping[str, dict]], extra: Mapping | None = None) -> Path:
    """Write ``{"models": {<model>: {<dataset>: {metrics}}}, ...}`` atomically, keys sorted (diff-stable)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"models": {m: dict(v) for m, v in models.items()}}
    if extra:
        doc.update(extra)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


def degenerate_tasks(preds: pd.DataFrame) -> dict[str, str]:
    """{task: why} for every task whose metric is undefined on this test set (one class only, or no
    label at all), e.g. ``{"view": "one class only (MLO): AUC undefined"}``."""
    out: dict[str, str] = {}
    checks = [("breastbin", "p_breastbin"), ("view", "p_view_MLO"), ("acr", "p_acr_1"), ("density", "p_density_A")]
    for task, col in checks:
        if task not in preds.columns or col not in preds.columns:
            continue
        values = preds[task].dropna()
        if task == "breastbin":
            values = pd.to_numeric(values, errors="coerce").dropna()
        classes = sorted({str(v) for v in values})
        if not classes:
            out[task] = "no labelled image: metric undefined"
        elif len(classes) == 1:
            what = "AUC" if task in ("breastbin", "view") else "weighted accuracy is one class's recall"
            out[task] = f"one class only ({classes[0]}): {what} undefined" if task in ("breastbin", "view") \
                else f"one class only ({classes[0]}): {what}"
    return out


def format_summary(path: Path | str) -> str:
    """Human summary of ``evaluation.json`` (printed at the end of ``mammo-mtl demo``), 80 columns wide,
    rendered by :func:`model.report_tables.render`."""
    from model.report_tables import evaluation_grid, render

    path = Path(path)
    if not path.is_file():
        return f"No evaluation yet: {path} does not exist (materialise the `evaluation` asset)."
    doc = json.loads(path.read_text())
    notes = [w for w in doc.get("warnings", [])]
    if doc.get("verdict"):
        notes.append(doc["verdict"])
    grid = evaluation_grid(doc.get("models", {}), compact=True, notes=notes)
    head = ["Breast-wise AUC % [bootstrap 95% CI], p = DeLong vs mtl; operating points in %.",
            "Synthetic demo data: a functional benchmark, never a clinical claim."]
    return "\n".join(head) + "\n" + render(grid, "text")


def to_dict(obj) -> dict:
    return asdict(obj)
