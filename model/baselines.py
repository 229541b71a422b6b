"""State-of-the-art comparison baselines of paper 3.3.1.

- "Baseline": the ResNet22 encoder without multi-level feature fusion, trained for one
  task (breastbin) from scratch.
- "MC-Drop": that network run N times (10 in the paper) with dropout 0.5 active at test
  time, predictions averaged.
- "Ensembles": the best epochs of K runs (5 in the paper) that differ only in the seed,
  predictions averaged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from model.config import ModelConfig, TrainConfig
from model.network import build_single_task_model
from model.predict import predict
from model.train import TrainResult, train

PAPER_MC_PASSES = 10
PAPER_ENSEMBLE_SEEDS = (0, 1, 2, 3, 4)


def single_task_config(base: TrainConfig | None = None, task: str = "breastbin", **overrides) -> TrainConfig:
    """The baseline's run config: ``base`` (epochs, size, batch, ...) with one task, no fusion."""
    fields = (base.model_dump() if base is not None else {})
    fields.pop("class_weights", None)
    fields.pop("task_factors", None)
    fields.update(tasks=(task,), architecture="single_task")
    if base is not None:
        fields["class_weights"] = {k: v for k, v in base.class_weights.items() if k == task}
        fields["task_factors"] = {k: v for k, v in base.task_factors.items() if k == task}
    fields.update(overrides)
    return TrainConfig.model_validate(fields)


def build_baseline(task: str = "breastbin", height: int = 256, width: int = 192, dropout: float = 0.5) -> keras.Model:
    return build_single_task_model(ModelConfig(tasks=(task,), height=height, width=width, dropout=dropout,
                                               architecture="single_task"))


def mc_dropout_predict(model_path: str | Path, rows: pd.DataFrame, image_root: str | Path,
                       passes: int = PAPER_MC_PASSES, *, seed: int = 0, batch_size: int = 8) -> pd.DataFrame:
    if passes < 1:
        raise ValueError(f"passes={passes} must be >= 1 for MC dropout")
    return predict(model_path, rows, image_root, mc_passes=passes, seed=seed, batch_size=batch_size)


def train_ensemble(config: TrainConfig, train_rows: pd.DataFrame, val_rows: pd.DataFrame | None,
                   image_root: Path, out_dir: Path, seeds: Sequence[int] = PAPER_ENSEMBLE_SEEDS) -> list[TrainResult]:
    """One run per seed under ``out_dir/seed_<s>/``; each keeps its own best epoch.
    Every run resumes independently after a kill."""
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError(f"seeds={list(seeds)} must be non-empty and distinct")
    out_dir = Path(out_dir)
    return [train(config.model_copy(update={"seed": int(s)}), train_rows, val_rows, image_root,
                  out_dir / f"seed_{int(s)}") for s in seeds]


def ensemble_predict(model_paths: Sequence[str | Path], rows: pd.DataFrame, image_root: str | Path,
                     *, batch_size: int = 8) -> pd.DataFrame:
    """Average of the members' probabilities (and latents, if all members have them:
    not returned — members' latent spaces are not aligned)."""
    if not model_paths:
        raise ValueError("ensemble_predict needs at least one model")
    frames = [predict(p, rows, image_root, batch_size=batch_size) for p in model_paths]
    cols = [c for c in frames[0].columns if c.startswith("p_")]
    for i, f in enumerate(frames[1:], start=1):
        if [c for c in f.columns if c.startswith("p_")] != cols:
            raise ValueError(f"ensemble member {model_paths[i]} predicts other tasks than {model_paths[0]}")
    out = frames[0][["image_key", "breast_key"]].copy()
    stacked = np.stack([f[cols].to_numpy(dtype=np.float64) for f in frames])
    out[cols] = stacked.mean(axis=0)
    for c in ("p_breastbin", "p_view_MLO"):
        if c in cols:
            out[f"{c}_sd"] = stacked[:, :, cols.index(c)].std(axis=0)
    return out
