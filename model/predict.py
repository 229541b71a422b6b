"""Inference: a saved model + manifest rows -> one row of probabilities per image.

Columns (contract "Model API"): ``image_key, breast_key``, ``p_breastbin`` (P malignant),
``p_acr_1..6``, ``p_density_A..D``, ``p_view_MLO`` for the tasks the model has, and
``z_0..z_495`` when ``return_latent``. With ``mc_passes = N > 0`` the probabilities are the
mean of N forward passes with dropout active (MC dropout, paper 3.3.1) and
``p_<task>_sd`` columns give the spread of the positive-class probability for binary
tasks — an uncertainty a reader can sort by.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

import model.layers  # noqa: F401  (registers custom layers for load_model)
import model.losses  # noqa: F401
from curation.tasks import LABEL_TASKS, TASKS
from model.data import check_rows, make_dataset
from model.network import latent_model


def probability_columns(task: str) -> list[str]:
    """Output column names for one task's softmax vector (binary tasks keep only P(positive))."""
    if task == "breastbin":
        return ["p_breastbin"]
    if task == "view":
        return ["p_view_MLO"]
    return [f"p_{task}_{c}" for c in TASKS[task]]


def _task_frame(task: str, probs: np.ndarray) -> dict[str, np.ndarray]:
    if task in ("breastbin", "view"):
        return {probability_columns(task)[0]: probs[:, 1]}
    return dict(zip(probability_columns(task), probs.T))


def load(model_path: str | Path) -> keras.Model:
    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    return keras.models.load_model(path, compile=False)


def model_tasks(m: keras.Model) -> list[str]:
    names = set(m.output_names)
    return [t for t in LABEL_TASKS if t in names]


def _reseed_dropout(m: keras.Model, seed: int) -> None:
    """Give every dropout layer a fixed RNG state: the same seed gives the same MC draws,
    whenever and however the model was loaded."""
    for i, layer in enumerate(m.layers):
        gen = getattr(layer, "seed_generator", None)
        if isinstance(layer, keras.layers.Dropout) and gen is not None:
            gen.state.assign(np.array([seed, i], dtype=gen.state.dtype))


def predict(model_path: str | Path | keras.Model, rows: pd.DataFrame, image_root: str | Path, mc_passes: int = 0,
            return_latent: bool = False, *, batch_size: int = 8, seed: int = 0) -> pd.DataFrame:
    """Probabilities for every row, in row order."""
    if mc_passes < 0:
        raise ValueError(f"mc_passes={mc_passes} must be >= 0")
    m = model_path if isinstance(model_path, keras.Model) else load(model_path)
    check_rows(rows, image_root)
    rows = rows.reset_index(drop=True)
    _, height, width, _ = m.input_shape
    tasks = model_tasks(m)
    zmodel = latent_model(m) if return_latent else None
    if return_latent and zmodel is None:
        raise ValueError("return_latent=True but this model has no 'z' layer (single-task baselines have none)")
    ds = make_dataset(rows, image_root, height=height, width=width, batch_size=batch_size, with_targets=False)

    # one forward function giving the heads and (optionally) z. Tracing a graph costs
    # seconds; for a handful of batches eager calls are faster
    net = keras.Model(m.inputs, {**{t: m.get_layer(t).output for t in tasks},
                                 **({"z": zmodel.outputs[0]} if zmodel is not None else {})})
    n_calls = -(-len(rows) // batch_size) * max(1, mc_passes)
    forward = tf.function(net.__call__) if n_calls > 16 else net.__call__
    _reseed_dropout(net, seed)  # MC-dropout draws are reproducible
    sums = {t: [] for t in tasks}
    sds = {t: [] for t in tasks}
    latents = []
    for x in ds:
        if mc_passes:
            draws = {t: [] for t in tasks}
            for _ in range(mc_passes):
                out = forward(x, training=True)  # dropout on
                for t in tasks:
                    draws[t].append(np.asarray(out[t], dtype=np.float64))
            for t in tasks:
                stack = np.stack(draws[t])
                sums[t].append(stack.mean(axis=0))
                sds[t].append(stack.std(axis=0))
        if not mc_passes or zmodel is not None:
            out = forward(x, training=False)
            if not mc_passes:
                for t in tasks:
                    sums[t].append(np.asarray(out[t], dtype=np.float64))
            if zmodel is not None:
                latents.append(np.asarray(out["z"], dtype=np.float32))

    cols: dict[str, np.ndarray] = {"image_key": rows["image_key"].to_numpy()}
    cols["breast_key"] = rows["breast_key"].to_numpy() if "breast_key" in rows else np.full(len(rows), None)
    for t in tasks:
        cols.update(_task_frame(t, np.concatenate(sums[t])))
        if mc_passes and t in ("breastbin", "view"):
            cols[f"{probability_columns(t)[0]}_sd"] = np.concatenate(sds[t])[:, 1]
    df = pd.DataFrame(cols)
    if zmodel is not None:
        z = np.concatenate(latents)
        df = pd.concat([df, pd.DataFrame(z, columns=[f"z_{i}" for i in range(z.shape[1])])], axis=1)
    return df
