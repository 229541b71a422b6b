"""What to train and how to predict with it: content-addressed :class:`TrainJob` / :class:`EvalJob`.

A spec at a seed expands into train jobs and one eval job; their keys change with anything that
changes the model, so a model shared by several tables is trained once and an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Mapping

import pandas as pd

from label_mining.training_policies import LabelPlan
from model.experiments.budgets import Budget
from model.experiments.specs import RunSpec


def frame_hash(rows: pd.DataFrame) -> str:
    """Content hash of manifest rows (order- and dtype-insensitive) — the runs table's manifest hash."""
    if rows.empty:
        return hashlib.sha256(b"empty").hexdigest()[:16]
    cols = sorted(rows.columns)
    canon = rows[cols].astype(str).sort_values(cols, kind="mergesort").reset_index(drop=True)
    digest = pd.util.hash_pandas_object(canon, index=False).to_numpy().tobytes()
    return hashlib.sha256(digest + json.dumps(cols).encode()).hexdigest()[:16]



# LabelPlan fields added after the first models were cached: left out of a key while at their
# default, so models trained before they existed are still found
_LATER_PLAN_FIELDS = {"uncertain_above": 0.0, "confirmed_only": False}


def plan_identity(plan: LabelPlan) -> dict:
    dump = plan.model_dump(mode="json")
    return {k: v for k, v in dump.items() if not (k in _LATER_PLAN_FIELDS and v == _LATER_PLAN_FIELDS[k])}


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class TrainJob:
    """One model to train. ``key`` changes with anything that changes the model."""

    role: str
    train_config: dict              # model.config.TrainConfig fields
    labels: LabelPlan
    train_on: tuple[str, str]
    init: "TrainJob | None" = None
    pseudo_from: "TrainJob | None" = None   # MixMatch: a first-stage model labels the unlabelled breasts
    manifest_hash: str = ""

    @property
    def key(self) -> str:
        return f"{self.role}-" + _digest({
            "config": self.train_config, "labels": plan_identity(self.labels), "train_on": self.train_on,
            "init": self.init.key if self.init else None,
            "pseudo": self.pseudo_from.key if self.pseudo_from else None, "manifest": self.manifest_hash})


@dataclass(frozen=True)
class EvalJob:
    """Predict the test sets with the mean of ``members`` (1 model, or an ensemble), optionally
    with ``mc_passes`` stochastic forward passes (MC dropout)."""

    members: tuple[TrainJob, ...]
    mc_passes: int = 0
    latent: bool = False

    @property
    def key(self) -> str:
        return "eval-" + _digest({"members": [m.key for m in self.members], "mc": self.mc_passes, "z": self.latent})


def _gpu_visible() -> bool:
    import tensorflow as tf  # only asked when a budget says "auto"

    return bool(tf.config.list_physical_devices("GPU"))


def train_config_for(spec: RunSpec, b: Budget, seed: int) -> dict:
    finetune = spec.role == "finetune"
    cfg = {"tasks": list(spec.tasks), "height": b.height, "width": b.width, "architecture": spec.architecture,
           "epochs": b.finetune_epochs if finetune else b.epochs, "batch_size": b.batch_size,
           "learning_rate": b.finetune_learning_rate if finetune else b.learning_rate, "seed": seed,
           "class_weights": {t: list(w) for t, w in spec.class_weights.items() if t in spec.tasks}, "verbose": 0}
    # only set when asked for, so the keys of CPU budgets' models stay what they were
    if b.mixed_precision == "on" or (b.mixed_precision == "auto" and _gpu_visible()):
        cfg["mixed_precision"] = True
    if b.jit_compile != "off":
        cfg["jit_compile"] = True if b.jit_compile == "on" else "auto"
    return cfg


def expand(spec: RunSpec, b: Budget, seed: int, specs_by_name: Mapping[str, RunSpec],
           manifest_hashes: Mapping[tuple[str, str], str]) -> EvalJob:
    """The jobs behind one table row at one seed."""

    def job(s: RunSpec, sd: int, role: str | None = None, labels: LabelPlan | None = None,
            pseudo: TrainJob | None = None) -> TrainJob:
        init = None
        if s.init_from:
            if s.init_from not in specs_by_name:
                raise ValueError(f"{s.name}: init_from={s.init_from!r} is not a row of this experiment")
            init = expand(specs_by_name[s.init_from], b, sd, specs_by_name, manifest_hashes).members[0]
        plan = (labels or s.labels).model_copy(update={"seed": sd})
        return TrainJob(role=role or ("single_task" if s.architecture == "single_task" else s.role),
                        train_config=train_config_for(s, b, sd), labels=plan, train_on=s.train_on, init=init,
                        pseudo_from=pseudo, manifest_hash=manifest_hashes.get(tuple(s.train_on), ""))

    if spec.role == "ensemble" and b.ensemble_size > 1:
        return EvalJob(tuple(job(spec, seed * 100 + k) for k in range(b.ensemble_size)))
    if spec.role == "mc_dropout":
        return EvalJob((job(spec, seed),), mc_passes=b.mc_passes)
    if spec.role == "pseudo_label":
        first = job(spec, seed, labels=spec.labels.model_copy(update={"keep_fraction": spec.pseudo_label_keep}))
        return EvalJob((job(spec, seed, role="pseudo_label", pseudo=first),))
    return EvalJob((job(spec, seed),), latent=spec.architecture == "mtl" and "breastbin" in spec.tasks)

