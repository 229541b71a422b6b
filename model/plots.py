"""Evaluation plots as PNG files: ROC curves, confusion matrices, calibration and the t-SNE of the
latent vector z coloured by class, view and density (paper Fig. 6).

Matplotlib's Agg backend only (no display on a server); every figure is closed after saving so a
long evaluation does not accumulate figures. PNGs are written without a timestamp, so the same
predictions give the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from curation.tasks import TASKS  # noqa: E402
from model import metrics as M  # noqa: E402

_PNG_METADATA = {"Software": None}  # no matplotlib version string: bytes depend on the data only


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight", metadata=_PNG_METADATA)
    plt.close(fig)
    return path


def roc_plot(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> Path:
    """ROC curves of several models on one test set; ``curves[name] = (labels, scores)``."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, (y, s) in curves.items():
        y, s = M._as_binary(y, s)
        if y.min() == y.max():
            continue
        fpr, tpr, _ = roc_curve(y, s)
        r = M.auc_with_ci(y, s, n_bootstrap=0)
        ax.plot(fpr, tpr, label=f"{name} (AUC {100 * r.auc:.1f})")
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def confusion_plot(cm: np.ndarray, classes, path: Path, title: str) -> Path:
    """Confusion matrix, rows = truth, columns = prediction, cells = counts and row-normalised %."""
    cm = np.asarray(cm)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.1 * len(classes) + 2, 1.1 * len(classes) + 1.5))
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{cm[i, j]}\n{100 * frac[i, j]:.0f}%", ha="center", va="center", fontsize=8,
                    color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), [str(c) for c in classes])
    ax.set_yticks(range(len(classes)), [str(c) for c in classes])
    ax.set(xlabel="predicted", ylabel="truth", title=title)
    return _save(fig, path)


def calibration_plot(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str,
                     n_bins: int = 10) -> Path:
    """Reliability diagram: observed malignancy rate per bin of predicted probability."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, (y, s) in curves.items():
        y, s = M._as_binary(y, s)
        if len(y) == 0:
            continue
        frac_pos, mean_pred = calibration_curve(y, np.clip(s, 0, 1), n_bins=n_bins, strategy="uniform")
        ax.plot(mean_pred, frac_pos, marker="o", ms=3, label=name)
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
    ax.set(xlabel="predicted probability of malignancy", ylabel="observed fraction malignant", title=title,
           xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def latent_columns(frame: pd.DataFrame) -> list[str]:
    cols = [c for c in frame.columns if c.startswith("z_") and c[2:].isdigit()]
    return sorted(cols, key=lambda c: int(c[2:]))


def tsne_embedding(z: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE of the latent vectors (PCA init, fixed seed: the same z gives the same picture)."""
    from sklearn.manifold import TSNE

    n = len(z)
    if n < 5:
        raise ValueError(f"t-SNE needs at least 5 images, got {n}")
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3.0)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                learning_rate="auto").fit_transform(np.asarray(z, dtype=np.float64))


def tsne_plot(preds: pd.DataFrame, path: Path, title: str, seed: int = 0, max_points: int = 2000) -> Path:
    """Paper Fig. 6: the latent z of the test images, one panel per colouring (malignancy, view,
    density); missing labels are drawn in light grey so nothing is silently dropped."""
    cols = latent_columns(preds)
    if not cols:
        raise ValueError("predictions carry no latent columns z_0..z_N (predict with return_latent=True)")
    frame = preds.sort_values("image_key").reset_index(drop=True) if "image_key" in preds.columns else preds
    if len(frame) > max_points:
        frame = frame.sample(n=max_points, random_state=seed).sort_index()
    xy = tsne_embedding(frame[cols].to_numpy(), seed=seed)
    panels = [("breastbin", "malignancy", {"0": "benign/normal", "1": "malignant"}),
              ("view", "view", None), ("density", "density", None)]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    for ax, (col, label, names) in zip(axes, panels):
        values = frame[col] if col in frame.columns else pd.Series([None] * len(frame))
        values = values.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else
                            str(int(v)) if isinstance(v, (int, float, np.integer, np.floating)) else str(v).upper())
        if col == "view":
            values = values.map(lambda v: None if v is None else ("MLO" if v in ("MLO", "ML") else v))
        missing = values.isna().to_numpy()
        ax.scatter(xy[missing, 0], xy[missing, 1], s=6, c="lightgrey", label="missing")
        order = [str(c) for c in TASKS[col]]
        for k, cls in enumerate(order):
            sel = (values == cls).to_numpy()
            if sel.any():
                ax.scatter(xy[sel, 0], xy[sel, 1], s=8, color=plt.cm.tab10(k),
                           label=(names or {}).get(cls, cls))
        ax.set(title=f"{title}: {label}", xticks=[], yticks=[])
        ax.legend(fontsize=7, loc="best", markerscale=2)
    return _save(fig, path)
