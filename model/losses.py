"""The losses of paper eq. 1-3.

Each classification target arrives packed as ``(class_index, w)`` per sample, with
``w = 0`` when the label is missing and ``1 - u`` otherwise (eq. 2). The per-sample loss
is ``w * class_weight[y] * CE(y, p)``; Keras then averages over the batch size (not over
the sum of weights), so the weight scales the sample's gradient "without any additional
normalization" (paper 2.2): a missing label contributes exactly zero, u = 0.5 exactly
half. The reconstruction loss is the per-image MSE (eq. 3).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from curation.tasks import n_classes


@keras.saving.register_keras_serializable(package="mammo")
class UncertaintyWeightedCrossEntropy(keras.losses.Loss):
    """Cross-entropy on softmax probabilities, weighted per sample by the packed ``w``
    and per class by ``class_weights`` (e.g. x20 for ACR 4-5 when fine-tuning)."""

    def __init__(self, n_classes: int, class_weights: Sequence[float] | None = None,
                 name: str = "uncertainty_weighted_ce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.n_classes = int(n_classes)
        if class_weights is not None and len(class_weights) != self.n_classes:
            raise ValueError(f"class_weights has {len(class_weights)} values, expected {self.n_classes}")
        self.class_weights = None if class_weights is None else [float(c) for c in class_weights]

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "float32")
        y_pred = ops.cast(y_pred, "float32")
        idx = ops.cast(y_true[:, 0], "int32")
        w = y_true[:, 1]
        ce = keras.losses.sparse_categorical_crossentropy(idx, y_pred)
        if self.class_weights is not None:
            w = w * ops.take(ops.convert_to_tensor(self.class_weights, "float32"), idx)
        return ce * w

    def get_config(self):
        return {**super().get_config(), "n_classes": self.n_classes, "class_weights": self.class_weights}


def task_losses(tasks: Sequence[str], class_weights: dict[str, Sequence[float]] | None = None) -> dict:
    class_weights = class_weights or {}
    out = {}
    for t in tasks:
        if t == "rec":
            out[t] = keras.losses.MeanSquaredError(name="rec_mse")
        else:
            out[t] = UncertaintyWeightedCrossEntropy(n_classes(t), class_weights.get(t), name=f"{t}_ce")
    return out


def weighted_ce_numpy(probs: np.ndarray, packed: np.ndarray, class_weights: Sequence[float] | None = None) -> float:
    """The same loss in NumPy, averaged over the batch — used for validation loss so
    the number picked for model selection is the one the optimiser minimises."""
    idx = packed[:, 0].astype(int)
    w = packed[:, 1].astype(np.float64)
    if class_weights is not None:
        w = w * np.asarray(class_weights, dtype=np.float64)[idx]
    p = np.clip(probs[np.arange(len(idx)), idx].astype(np.float64), 1e-7, 1.0)
    return float(np.mean(-np.log(p) * w)) if len(idx) else float("nan")
