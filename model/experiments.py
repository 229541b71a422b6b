"""The paper's experiments (section 3.3, Tables 2–9) as typed configuration, and the tables they fill.

Three layers, each testable without TensorFlow:

1. :class:`LabelPlan` — how a run changes its training labels (uncertainty policy, fewer labels,
   fewer samples, noisy labels, ACR-derived malignancy with ``u_const``), applied breast-wise and
   seeded by :func:`apply_label_plan`.
2. :class:`RunSpec` — one row of a table (Baseline, MC-drop, MTL_breast−25 %, FT_u0.50, …) and
   :data:`EXPERIMENTS` — which rows each table needs. A spec at a seed expands into
   :class:`TrainJob`\\ s (what to train) and one :class:`EvalJob` (how to predict with them);
   both are content-addressed, so the reference MTL model shared by Tables 2, 4, 5, 6 and 8 is
   trained once, and an interrupted ``mammo-mtl experiments`` resumes where it stopped.
3. :func:`run_experiments` walks the jobs through an injected :class:`Executor` (the real one in
   ``model.training_job`` calls ``model.train`` / ``model.predict``), evaluates predictions with
   ``model.metrics`` and writes ``reports/tables/table_<n>.md`` + ``.parquet`` in the paper's layout.

Deviations from the paper, on purpose: the "Wu et al." column needs the authors' pre-trained
weights (not shipped, no network) and is left out; cells are mean ± sd over *seeds* (the paper
averages its 10 best epochs of one run, which mostly measures epoch-to-epoch noise, and picks
them on the test set); the best epoch is chosen on hmi ``val`` when the manifests have one, else on
the training loss — never on a test set. Table 4's and Table 6's breastbin-only rows keep the
multi-level fusion, so they vary the tasks alone (the paper's Table 4 prints its no-fusion
Baseline there, while its text reports fusion-only separately). Noisy labels (NL) put excluded
labels back with a *random* class; MixMatch is plain hard pseudo-labelling from a model trained on
half the labels, as the paper describes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal, Mapping, Protocol, Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from curation.tasks import ALL_MODEL_TASKS, LABEL_TASKS, TASKS

from model import metrics as M

UncertaintyPolicy = Literal["weight", "ignore", "exclude"]
EXPERIMENT_SOURCE = "experiment"
DATASETS: dict[str, tuple[str, str]] = {"hmi_test": ("hmi", "test"), "inb": ("inb", "test")}


# ================================================================================================
# 1. Label plans
# ================================================================================================
class LabelPlan(BaseModel):
    """The label transformations of one training run, applied in the order of the fields.

    Breast-wise throughout: the views of a breast share its labels, so removing or corrupting the
    label of one view and not the other would leak it back through the second view.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    uncertainty_policy: UncertaintyPolicy = Field(
        "weight", description="weight: w = 1 - u (paper eq. 2); ignore: w = 1 for every label; "
                              "exclude: a label with u > 0 counts as missing")
    keep_fraction: float = Field(1.0, gt=0.0, le=1.0, description="fraction of breasts keeping labels of keep_tasks")
    keep_tasks: tuple[str, ...] = ("breastbin",)
    sample_fraction: float = Field(1.0, gt=0.0, le=1.0, description="fraction of breasts kept at all (MTL_all-x%)")
    noise_exclude_fraction: float = Field(0.0, ge=0.0, lt=1.0, description="NL: breastbin labels excluded")
    noise_fraction: float = Field(0.0, ge=0.0, le=1.0, description="NL: of the excluded, put back with a random label")
    acr_derived_u: float | None = Field(None, ge=0.0, lt=1.0, description="u_const of ACR-derived breastbin labels")
    aux_u_const: float | None = Field(None, ge=0.0, lt=1.0, description="u of acr/density/view labels (fine-tuning)")
    seed: int = Field(0, ge=0)

    @field_validator("keep_tasks", mode="before")
    @classmethod
    def _tasks(cls, v):
        v = tuple([t.strip() for t in v.split(",") if t.strip()] if isinstance(v, str) else v)
        bad = [t for t in v if t not in LABEL_TASKS]
        if bad or not v:
            raise ValueError(f"keep_tasks={list(v)}: choose one or more of {list(LABEL_TASKS)}")
        return v

    @model_validator(mode="after")
    def _noise(self):
        if self.noise_fraction > 0 and self.noise_exclude_fraction == 0:
            raise ValueError("noise_fraction > 0 needs noise_exclude_fraction > 0 (noise replaces excluded labels)")
        return self


def _breasts(rows: pd.DataFrame) -> np.ndarray:
    return np.array(sorted(rows["breast_key"].astype(str).unique()))


def _pick(breasts: Sequence[str], fraction: float, rng: np.random.Generator) -> set[str]:
    breasts = np.asarray(sorted(breasts))
    n = int(round(fraction * len(breasts)))
    return set(rng.permutation(breasts)[:n].tolist()) if n else set()


def _remove(rows: pd.DataFrame, mask: np.ndarray, task: str) -> None:
    rows.loc[mask, task] = None
    rows.loc[mask, f"{task}_weight"] = 0.0
    rows.loc[mask, f"{task}_u"] = 1.0
    rows.loc[mask, f"{task}_source"] = EXPERIMENT_SOURCE


def _as_object(rows: pd.DataFrame) -> pd.DataFrame:
    """Label columns as objects so None/float/str can be written back without dtype surprises."""
    rows = rows.copy()
    for t in LABEL_TASKS:
        if t in rows.columns:
            rows[t] = rows[t].astype(object).where(rows[t].notna(), None)
    return rows


def apply_uncertainty_policy(rows: pd.DataFrame, policy: UncertaintyPolicy) -> pd.DataFrame:
    rows = _as_object(rows)
    for t in LABEL_TASKS:
        if t not in rows.columns:
            continue
        present = rows[t].notna().to_numpy()
        u = pd.to_numeric(rows[f"{t}_u"], errors="coerce").fillna(0.0).to_numpy(dtype=float) \
            if f"{t}_u" in rows.columns else np.zeros(len(rows))
        if policy == "weight":
            w = np.where(present, 1.0 - u, 0.0)
        elif policy == "ignore":
            w = np.where(present, 1.0, 0.0)
        elif policy == "exclude":
            w = np.where(present & (u <= 0.0), 1.0, 0.0)
            rows.loc[present & (u > 0.0), t] = None
        else:
            raise ValueError(f"uncertainty_policy={policy!r}: choose weight, ignore or exclude")
        rows[f"{t}_weight"] = np.clip(w, 0.0, 1.0)
    return rows


DERIVED_SOURCES = ("derived", "acr_derived")  # label_mining's source for ACR-derived malignancy, and ours


def derive_malignancy_from_acr(rows: pd.DataFrame, u_const: float) -> pd.DataFrame:
    """Paper 3.3.5: a breastbin label from the ACR category wherever no better one exists.

    ACR 1–2 → 0, ACR 4–5 → 1, ACR 3 → missing (probably benign, but not enough to train on).
    ACR 6 means "known biopsy-proven malignancy" and is kept malignant. Labels from a better
    source (pathology, follow-up, review, an ACR 6 report) are kept as they are: a biopsy outranks a
    category. Labels label_mining itself derived from ACR are re-derived with ``u_const``.
    """
    rows = _as_object(rows)
    acr = pd.to_numeric(rows["acr"], errors="coerce")
    derived = pd.Series(np.where(acr.isin([1, 2]), 0.0, np.where(acr.isin([4, 5, 6]), 1.0, np.nan)), index=rows.index)
    source = rows["breastbin_source"].astype(object).where(rows["breastbin_source"].notna(), None)
    better = rows["breastbin"].notna() & ~source.isin(DERIVED_SOURCES)
    has = ~better & derived.notna()
    gone = ~better & derived.isna()
    rows.loc[has, "breastbin"] = derived[has].astype(int).astype(object)
    rows.loc[has, "breastbin_u"] = u_const
    rows.loc[has, "breastbin_weight"] = 1.0 - u_const
    rows.loc[has, "breastbin_source"] = "acr_derived"
    _remove(rows, gone.to_numpy(), "breastbin")
    return rows


def apply_label_plan(rows: pd.DataFrame, plan: LabelPlan) -> pd.DataFrame:
    """The rows a run trains on — a new frame; the manifest itself is never modified."""
    rows = apply_uncertainty_policy(rows.reset_index(drop=True), plan.uncertainty_policy)
    rng = np.random.default_rng(plan.seed)
    if plan.sample_fraction < 1.0:
        kept = _pick(_breasts(rows), plan.sample_fraction, rng)
        rows = rows[rows["breast_key"].isin(kept)].reset_index(drop=True)
    if plan.keep_fraction < 1.0:
        labelled = rows[rows[list(plan.keep_tasks)].notna().any(axis=1)]
        dropped = _pick(_breasts(labelled), 1.0 - plan.keep_fraction, rng)
        mask = rows["breast_key"].isin(dropped).to_numpy()
        for t in plan.keep_tasks:
            _remove(rows, mask, t)
    if plan.noise_exclude_fraction > 0:
        excluded = _pick(_breasts(rows[rows["breastbin"].notna()]), plan.noise_exclude_fraction, rng)
        noisy = _pick(sorted(excluded), plan.noise_fraction, rng)
        _remove(rows, rows["breast_key"].isin(excluded).to_numpy(), "breastbin")
        random_label = {b: int(rng.integers(0, 2)) for b in sorted(noisy)}
        mask = rows["breast_key"].isin(noisy).to_numpy()
        rows.loc[mask, "breastbin"] = rows.loc[mask, "breast_key"].map(random_label).astype(object)
        rows.loc[mask, "breastbin_weight"] = 1.0
        rows.loc[mask, "breastbin_u"] = 0.0
        rows.loc[mask, "breastbin_source"] = "experiment_noise"
    if plan.acr_derived_u is not None:
        rows = derive_malignancy_from_acr(rows, plan.acr_derived_u)
    if plan.aux_u_const is not None:
        for t in ("acr", "density", "view"):
            present = rows[t].notna()
            rows.loc[present, f"{t}_u"] = plan.aux_u_const
            rows.loc[present, f"{t}_weight"] = 1.0 - plan.aux_u_const
    return rows


def label_counts(rows: pd.DataFrame) -> dict[str, int]:
    """Labels with a non-zero weight per task — what a run actually learns from."""
    out = {}
    for t in LABEL_TASKS:
        if t in rows.columns:
            w = pd.to_numeric(rows[f"{t}_weight"], errors="coerce").fillna(0.0) if f"{t}_weight" in rows else 1.0
            out[t] = int((rows[t].notna() & (w > 0)).sum())
    return out


def frame_hash(rows: pd.DataFrame) -> str:
    """Content hash of manifest rows (order- and dtype-insensitive) — the runs table's manifest hash."""
    if rows.empty:
        return hashlib.sha256(b"empty").hexdigest()[:16]
    cols = sorted(rows.columns)
    canon = rows[cols].astype(str).sort_values(cols, kind="mergesort").reset_index(drop=True)
    digest = pd.util.hash_pandas_object(canon, index=False).to_numpy().tobytes()
    return hashlib.sha256(digest + json.dumps(cols).encode()).hexdigest()[:16]


# ================================================================================================
# 2. Budgets and run specifications
# ================================================================================================
class Budget(BaseModel):
    """How much compute an experiment gets. ``small`` fits the 2-core demo machine; ``paper``
    follows the paper's protocol (100 epochs, 5-model ensembles, 10 MC passes, 20 fine-tuning
    epochs) at a height a single GPU trains in hours rather than days."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    height: int = Field(gt=0)
    width: int = Field(gt=0)
    epochs: int = Field(gt=0)
    finetune_epochs: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    learning_rate: float = Field(1e-3, gt=0)
    seeds: int = Field(1, ge=1, description="independent trainings per row; cells are mean ± sd over seeds")
    ensemble_size: int = Field(2, ge=2)
    mc_passes: int = Field(10, ge=2)
    n_bootstrap: int = Field(1000, ge=0)
    finetune_learning_rate: float = Field(1e-4, gt=0)


BUDGETS: dict[str, Budget] = {
    # the assets' defaults (make demo): Table 2/3 built from the demo's own models, nothing retrained
    "demo": Budget(name="demo", height=256, width=128, epochs=8, finetune_epochs=2, batch_size=16,
                   seeds=1, ensemble_size=2, mc_passes=10, n_bootstrap=1000),
    "small": Budget(name="small", height=128, width=64, epochs=4, finetune_epochs=2, batch_size=16,
                    seeds=1, ensemble_size=2, mc_passes=10, n_bootstrap=500),
    "paper": Budget(name="paper", height=512, width=256, epochs=100, finetune_epochs=20, batch_size=16,
                    seeds=3, ensemble_size=5, mc_passes=10, n_bootstrap=2000),
}


def budget(name: str) -> Budget:
    try:
        return BUDGETS[name]
    except KeyError:
        raise ValueError(f"budget={name!r}: choose one of {sorted(BUDGETS)}") from None


Role = Literal["mtl", "single_task", "ensemble", "mc_dropout", "finetune", "pseudo_label"]


class RunSpec(BaseModel):
    """One row of a paper table: what is trained and how it predicts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    role: Role = "mtl"
    tasks: tuple[str, ...] = ALL_MODEL_TASKS
    architecture: Literal["mtl", "single_task"] = "mtl"
    labels: LabelPlan = LabelPlan()
    train_on: tuple[str, str] = ("hmi", "train")
    init_from: str | None = Field(None, description="name of the spec whose model this one starts from")
    class_weights: dict[str, tuple[float, ...]] = Field(default_factory=dict)
    pseudo_label_keep: float = Field(0.5, gt=0.0, lt=1.0, description="MixMatch: labels kept for the first stage")

    @field_validator("tasks", mode="before")
    @classmethod
    def _tasks(cls, v):
        v = tuple([t.strip() for t in v.split(",") if t.strip()] if isinstance(v, str) else v)
        bad = [t for t in v if t not in ALL_MODEL_TASKS]
        if bad or not v:
            raise ValueError(f"tasks={list(v)}: choose from {list(ALL_MODEL_TASKS)}")
        return tuple(t for t in ALL_MODEL_TASKS if t in v)

    @model_validator(mode="after")
    def _consistent(self):
        if self.role in ("single_task", "ensemble", "mc_dropout", "pseudo_label") and self.architecture != "single_task":
            raise ValueError(f"{self.name}: role={self.role} is a single-task baseline; set architecture='single_task'")
        if self.role == "finetune" and not self.init_from:
            raise ValueError(f"{self.name}: a fine-tuning run needs init_from (the model it starts from)")
        return self


REFERENCE = "Ours (MTL)"
_BASELINE_KW = dict(tasks=("breastbin",), architecture="single_task")
FINETUNE_CLASS_WEIGHTS: dict[str, tuple[float, ...]] = {
    # paper 3.3.5: weight 20 for every sample with ACR 4-5 (under-represented in VTB); as class
    # weights these reach the samples through their ACR class and their (ACR-derived) malignant class
    "breastbin": (1.0, 20.0),
    "acr": (1.0, 1.0, 1.0, 20.0, 20.0, 1.0),
}


def finetune_spec(u_const: float, aux_u_const: float = 0.5, init_from: str = REFERENCE,
                  name: str | None = None) -> RunSpec:
    return RunSpec(name=name or f"FT u{u_const:.2f}", role="finetune", train_on=("vtb", "finetune"),
                   init_from=init_from, class_weights=FINETUNE_CLASS_WEIGHTS,
                   labels=LabelPlan(acr_derived_u=u_const, aux_u_const=aux_u_const))


def _reference() -> RunSpec:
    return RunSpec(name=REFERENCE)


@dataclass(frozen=True)
class TableSpec:
    number: str                 # "2_3", "4", ...
    tables: tuple[str, ...]     # the paper's table numbers it fills, one per dataset
    title: str
    layout: Literal["strata", "ablation", "auc_pair", "tasks"]
    runs: tuple[RunSpec, ...]
    datasets: tuple[str, ...] = ("hmi_test", "inb")


def _ablation(name: str, tasks: tuple[str, ...]) -> RunSpec:
    return RunSpec(name=name, tasks=tasks)


EXPERIMENTS: dict[str, TableSpec] = {
    "2_3": TableSpec("2_3", ("2", "3"), "Binary cancer classification AUC (p-value to ours), overall and per stratum",
                     "strata", (
                         RunSpec(name="Baseline", role="single_task", **_BASELINE_KW),
                         RunSpec(name="Ensembles", role="ensemble", **_BASELINE_KW),
                         RunSpec(name="MC-drop", role="mc_dropout", **_BASELINE_KW),
                         _reference())),
    "4": TableSpec("4", ("4",), "Contribution of each auxiliary task to the binary cancer AUC", "ablation", (
        _reference(),
        _ablation("breastbin", ("breastbin",)),
        _ablation("breastbin + rec", ("breastbin", "rec")),
        _ablation("breastbin + ACR", ("breastbin", "acr")),
        _ablation("breastbin + density", ("breastbin", "density")),
        _ablation("breastbin + view", ("breastbin", "view")))),
    "5": TableSpec("5", ("5",), "Binary cancer AUC with fewer or noisier breastbin labels", "auc_pair", (
        RunSpec(name="Reference"),
        *(RunSpec(name=f"MTL breast-{p}%", labels=LabelPlan(keep_fraction=1 - p / 100)) for p in (25, 50, 75)),
        *(RunSpec(name=f"MTL all-{p}%", labels=LabelPlan(sample_fraction=1 - p / 100)) for p in (25, 50, 75)),
        RunSpec(name="MixMatch", role="pseudo_label", **_BASELINE_KW),
        RunSpec(name="NL50%", role="single_task", labels=LabelPlan(noise_exclude_fraction=0.5, noise_fraction=0.5),
                **_BASELINE_KW),
        RunSpec(name="NL100%", role="single_task", labels=LabelPlan(noise_exclude_fraction=0.5, noise_fraction=1.0),
                **_BASELINE_KW))),
    "6_7": TableSpec("6_7", ("6", "7"), "Multi-task vs mono-task training (mono-task keeps the feature fusion)",
                     "tasks", (
                         RunSpec(name="MTL"),
                         RunSpec(name="breastbin", tasks=("breastbin",)),
                         RunSpec(name="ACR", tasks=("acr",)),
                         RunSpec(name="density", tasks=("density",)),
                         RunSpec(name="view", tasks=("view",)))),
    "8_9": TableSpec("8_9", ("8", "9"), "Fine-tuning on vtb with ACR-derived breastbin labels of uncertainty u_const",
                     "tasks", (
                         RunSpec(name="Reference (MTL)"),
                         *(finetune_spec(u, init_from="Reference (MTL)") for u in (0.0, 0.25, 0.5, 0.75, 0.9)))),
}
TABLE_ALIASES = {n: key for key, spec in EXPERIMENTS.items() for n in (*spec.tables, key)}


def resolve_tables(names: Iterable[str]) -> list[str]:
    """``["2", "6_7", "9"]`` -> experiment keys ``["2_3", "6_7", "8_9"]`` (deduplicated, in order)."""
    out: list[str] = []
    for n in names:
        key = TABLE_ALIASES.get(str(n).strip())
        if key is None:
            raise ValueError(f"table {n!r} is not one of the paper's experiments; choose from "
                             f"{sorted(set(TABLE_ALIASES))}")
        if key not in out:
            out.append(key)
    return out


# ================================================================================================
# Jobs: what to train, how to predict (content-addressed)
# ================================================================================================
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
            "config": self.train_config, "labels": self.labels.model_dump(mode="json"), "train_on": self.train_on,
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


def train_config_for(spec: RunSpec, b: Budget, seed: int) -> dict:
    finetune = spec.role == "finetune"
    return {"tasks": list(spec.tasks), "height": b.height, "width": b.width, "architecture": spec.architecture,
            "epochs": b.finetune_epochs if finetune else b.epochs, "batch_size": b.batch_size,
            "learning_rate": b.finetune_learning_rate if finetune else b.learning_rate, "seed": seed,
            "class_weights": {t: list(w) for t, w in spec.class_weights.items() if t in spec.tasks}, "verbose": 0}


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

    if spec.role == "ensemble":
        return EvalJob(tuple(job(spec, seed * 100 + k) for k in range(b.ensemble_size)))
    if spec.role == "mc_dropout":
        return EvalJob((job(spec, seed),), mc_passes=b.mc_passes)
    if spec.role == "pseudo_label":
        first = job(spec, seed, labels=spec.labels.model_copy(update={"keep_fraction": spec.pseudo_label_keep}))
        return EvalJob((job(spec, seed, role="pseudo_label", pseudo=first),))
    return EvalJob((job(spec, seed),), latent=spec.architecture == "mtl" and "breastbin" in spec.tasks)


# ================================================================================================
# 3. Running and tabulating
# ================================================================================================
class Executor(Protocol):
    """What the runner needs from the model code (``model.training_job.ModelExecutor``)."""

    def train(self, job: TrainJob, rows: pd.DataFrame, out_dir: Path, init_model: Path | None) -> Path: ...

    def predict(self, model_paths: Sequence[Path], rows: pd.DataFrame, mc_passes: int, latent: bool) -> pd.DataFrame: ...


TRUTH_COLUMNS = ("image_key", "breast_key", "breastbin", "acr", "density", "view")


def attach_truth(preds: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Predictions joined with the test labels, sorted by image_key (determinism)."""
    truth = rows[[c for c in TRUTH_COLUMNS if c in rows.columns]]
    p = preds.drop(columns=[c for c in TRUTH_COLUMNS if c in preds.columns and c != "image_key"])
    out = truth.merge(p, on="image_key", how="inner", validate="one_to_one")
    if len(out) != len(rows):
        raise ValueError(f"predictions cover {len(out)} of {len(rows)} test images")
    return out.sort_values("image_key", kind="mergesort").reset_index(drop=True)


def pseudo_labelled(rows: pd.DataFrame, preds: pd.DataFrame) -> pd.DataFrame:
    """MixMatch-style pseudo-labels: breasts without a breastbin label get the first-stage model's
    hard call (breast-wise max over views > 0.5) with full weight."""
    rows = _as_object(rows)
    breast_p = preds.groupby("breast_key")["p_breastbin"].max()
    missing = rows["breastbin"].isna()
    calls = rows.loc[missing, "breast_key"].map(breast_p)
    ok = calls.notna()
    idx = calls[ok].index
    rows.loc[idx, "breastbin"] = (calls[ok] > 0.5).astype(int).astype(object)
    rows.loc[idx, "breastbin_weight"] = 1.0
    rows.loc[idx, "breastbin_u"] = 0.0
    rows.loc[idx, "breastbin_source"] = "pseudo_label"
    return rows


JOB_FILE = "experiment_job.json"  # marks a finished training (model.train writes its own run.json)


@dataclass
class Runner:
    """Trains and predicts jobs, caching every result on disk under ``models_root``
    (``<train key>/model.keras``; ``<eval key>/predictions/<dataset>.parquet``), so a job shared
    by several rows or tables runs once and an interrupted run resumes. ``retrain`` lists keys
    whose cached result is ignored once (an explicit retrain of the same configuration)."""

    models_root: Path
    manifests: Mapping[tuple[str, str], pd.DataFrame]
    executor: Executor
    log: Callable[[str], None] = print
    retrain: set[str] = field(default_factory=set)
    trained: dict[str, Path] = field(default_factory=dict)

    def model_path(self, job: TrainJob) -> Path:
        if job.key in self.trained:
            return self.trained[job.key]
        out = self.models_root / job.key
        done = out / JOB_FILE
        if job.key in self.retrain:
            self.retrain.discard(job.key)
            done.unlink(missing_ok=True)
        elif done.is_file() and (out / "model.keras").exists():
            self.log(f"reusing {job.key} (same configuration and manifest)")
            self.trained[job.key] = out / "model.keras"
            return self.trained[job.key]
        rows = self.manifests.get(tuple(job.train_on))
        if rows is None or rows.empty:
            raise FileNotFoundError(f"no manifest rows for cohort={job.train_on[0]} split={job.train_on[1]}; "
                                    f"materialise split_manifests first")
        init = self.model_path(job.init) if job.init else None
        train_rows = apply_label_plan(rows, job.labels)
        if job.pseudo_from is not None:
            first = self.model_path(job.pseudo_from)
            train_rows = pseudo_labelled(train_rows, self.executor.predict([first], train_rows, 0, False))
        counts = label_counts(train_rows)
        self.log(f"training {job.key} ({job.role}, {len(train_rows)} images, labels {counts})")
        out.mkdir(parents=True, exist_ok=True)
        path = self.executor.train(job, train_rows, out, init)
        done.write_text(json.dumps({"key": job.key, "role": job.role, "train_config": job.train_config,
                                    "labels": job.labels.model_dump(mode="json"), "train_on": list(job.train_on),
                                    "init": job.init.key if job.init else None,
                                    "pseudo_from": job.pseudo_from.key if job.pseudo_from else None,
                                    "manifest_hash": job.manifest_hash, "label_counts": counts},
                                   indent=2, sort_keys=True))
        self.trained[job.key] = Path(path)
        return self.trained[job.key]

    def predictions(self, ev: EvalJob, dataset: str) -> pd.DataFrame:
        out = self.models_root / ev.key / "predictions" / f"{dataset}.parquet"
        fresh = any(m.key in self.retrain for m in ev.members) or (ev.key, dataset) in self.retrain
        if out.is_file() and not fresh:
            return pd.read_parquet(out)
        rows = self.manifests.get(DATASETS[dataset])
        if rows is None or rows.empty:
            raise FileNotFoundError(f"no manifest rows for test set {dataset} {DATASETS[dataset]}")
        paths = [self.model_path(m) for m in ev.members]
        preds = attach_truth(self.executor.predict(paths, rows, ev.mc_passes, ev.latent), rows)
        out.parent.mkdir(parents=True, exist_ok=True)
        preds.to_parquet(out, index=False)
        self.retrain.discard((ev.key, dataset))
        return preds


def run_experiments(models_root: Path, tables_root: Path, manifests: Mapping[tuple[str, str], pd.DataFrame],
                    executor: Executor, tables: Sequence[str], b: Budget,
                    log: Callable[[str], None] = print) -> dict[str, list[Path]]:
    """Train/evaluate every row of the requested experiments and write their tables.

    Returns ``{experiment key: [written files]}``.
    """
    hashes = {k: frame_hash(v) for k, v in manifests.items()}
    runner = Runner(models_root, manifests, executor, log)
    written: dict[str, list[Path]] = {}
    for key in resolve_tables(tables):
        spec = EXPERIMENTS[key]
        by_name = {r.name: r for r in spec.runs}
        results: dict[str, dict[str, list[dict]]] = {}
        for seed in range(b.seeds):
            jobs = {r.name: expand(r, b, seed, by_name, hashes) for r in spec.runs}
            ref_name = _reference_name(spec)
            for ds in spec.datasets:
                ref = runner.predictions(jobs[ref_name], ds)
                for r in spec.runs:
                    preds = runner.predictions(jobs[r.name], ds)
                    metrics = M.evaluate_predictions(preds, n_bootstrap=b.n_bootstrap, seed=seed,
                                                     reference=None if r.name == ref_name else ref)
                    results.setdefault(r.name, {}).setdefault(ds, []).append(metrics)
        written[key] = write_tables(spec, results, tables_root, b)
        log(f"table(s) {', '.join(spec.tables)} written: {', '.join(str(p) for p in written[key])}")
    return written


def _reference_name(spec: TableSpec) -> str:
    names = [r.name for r in spec.runs]
    for cand in (REFERENCE, "Reference (MTL)", "Reference", "MTL"):
        if cand in names:
            return cand
    return names[0]


# ------------------------------------------------------------------------------------------------
# Table builders (the paper's rows and columns)
# ------------------------------------------------------------------------------------------------
def _cell(values: Sequence[float | None], p_values: Sequence[float | None] = (),
          ci: Sequence[float | None] | None = None) -> dict:
    mean, sd = M.mean_sd([v for v in values if v is not None])
    ps = [p for p in p_values if p is not None]
    p = float(np.median(ps)) if ps else None
    if not np.isfinite(mean):
        text = "-"
    else:
        text = f"{100 * mean:.2f}"
        if len(values) > 1:
            text += f" ± {100 * sd:.2f}"
        elif ci and ci[0] is not None and ci[1] is not None:
            text += f" [{100 * ci[0]:.1f}–{100 * ci[1]:.1f}]"
        if p is not None:
            text += f" ({'<0.01' if p < 0.01 else f'{p:.2f}'})"
    return {"value": None if not np.isfinite(mean) else mean, "sd": None if not np.isfinite(sd) else sd,
            "ci_low": ci[0] if ci and len(values) == 1 else None, "ci_high": ci[1] if ci and len(values) == 1 else None,
            "p_value": p, "n_runs": len([v for v in values if v is not None]), "cell": text}


def _get(m: dict, path: Sequence[str]):
    for k in path:
        if not isinstance(m, dict) or k not in m:
            return None
        m = m[k]
    return m


def _metric_cell(runs: list[dict], path: Sequence[str], ci_key: str | None = None, p_key: str | None = None) -> dict:
    values = [_get(m, path) for m in runs]
    ci = _get(runs[0], list(path[:-1]) + [ci_key]) if ci_key and runs else None
    ps = [_get(m, list(path[:-1]) + [p_key]) for m in runs] if p_key else []
    return _cell(values, ps, ci)


STRATA_ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Overall", ("breastbin_auc",)),
    *((f"Density {d}", ("strata", "density", d, "auc")) for d in M.DENSITY_CLASSES),
    *((f"View {v}", ("strata", "view", v, "auc")) for v in M.VIEW_CLASSES),
)
TASK_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("breastbin AUC", "breastbin_auc", "breastbin_auc_ci"),
    ("ACR weighted accuracy", "acr_wacc", None),
    ("density (BI-RADS) weighted accuracy", "density_wacc", None),
    ("view AUC", "view_auc", "view_auc_ci"),
)
DATASET_TITLES = {"hmi_test": "hmi test", "inb": "inb (external)"}


def build_table(spec: TableSpec, results: Mapping[str, Mapping[str, list[dict]]]) -> pd.DataFrame:
    """Tidy table: one row per (table, row, column) cell with value, sd, CI, p-value and the text."""
    recs: list[dict] = []

    def add(table: str, row: str, col: str, cell: dict, order: int):
        recs.append({"table": table, "row": row, "column": col, "row_order": order, **cell})

    for ti, ds in enumerate(spec.datasets):
        table = spec.tables[min(ti, len(spec.tables) - 1)]
        if spec.layout == "strata":
            for order, (row, path) in enumerate(STRATA_ROWS):
                for r in spec.runs:
                    runs = results[r.name][ds]
                    ci_key = "breastbin_auc_ci" if path == ("breastbin_auc",) else "auc_ci"
                    p_key = "p_value_vs_reference" if r.name != _reference_name(spec) else None
                    add(table, row, r.name, _metric_cell(runs, path, ci_key, p_key), order)
        elif spec.layout in ("ablation", "auc_pair"):
            for order, r in enumerate(spec.runs):
                if spec.layout == "ablation" and ti == 0:
                    for t in ("breastbin", "rec", "acr", "density", "view"):  # the paper's column order
                        add(table, r.name, t if t != "density" else "density (BI-RADS)",
                            {"cell": "+" if t in r.tasks else "−"}, order)
                p_key = "p_value_vs_reference" if r.name != _reference_name(spec) else None
                add(table, r.name, DATASET_TITLES[ds], _metric_cell(results[r.name][ds], ("breastbin_auc",),
                                                                    "breastbin_auc_ci", p_key), order)
        elif spec.layout == "tasks":
            for order, r in enumerate(spec.runs):
                for col, key, ci_key in TASK_COLUMNS:
                    add(table, r.name, col, _metric_cell(results[r.name][ds], (key,), ci_key), order)
    if spec.layout in ("ablation", "auc_pair"):
        for rec in recs:
            rec["table"] = spec.tables[0]
    return pd.DataFrame(recs)


def table_markdown(spec: TableSpec, frame: pd.DataFrame, table: str, b: Budget) -> str:
    part = frame[frame["table"] == table]
    cols = list(dict.fromkeys(part["column"]))
    rows = list(dict.fromkeys(part.sort_values("row_order", kind="mergesort")["row"]))
    grid = part.set_index(["row", "column"])["cell"]
    ds = spec.datasets[spec.tables.index(table)] if spec.layout in ("strata", "tasks") else None
    title = f"Table {table} — {spec.title}" + (f" — {DATASET_TITLES[ds]}" if ds else "")
    lines = [f"### {title}", "", "| | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for row in rows:
        lines.append(f"| {row} | " + " | ".join(str(grid.get((row, c), "-")) for c in cols) + " |")
    seeds = "mean ± sd over seeds" if b.seeds > 1 else "one seed: value [bootstrap 95% CI]"
    lines += ["", f"Values in %, breast-wise (max over views) unless a view stratum; {seeds}; (p) = DeLong "
                  f"p-value against the reference row. Budget `{b.name}`: H={b.height}, W={b.width}, "
                  f"{b.epochs} epochs, {b.seeds} seed(s). Synthetic demo data is a functional benchmark, "
                  f"never a clinical claim."]
    if spec.layout == "strata":
        lines.append("Wu et al. (pre-trained weights, not shipped) is not reproduced.")
    return "\n".join(lines) + "\n"


def write_tables(spec: TableSpec, results: Mapping[str, Mapping[str, list[dict]]], root: Path, b: Budget) -> list[Path]:
    frame = build_table(spec, results)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for table in dict.fromkeys(frame["table"]):
        md = root / f"table_{table}.md"
        md.write_text(table_markdown(spec, frame, table, b))
        pq_path = root / f"table_{table}.parquet"
        frame[frame["table"] == table].reset_index(drop=True).to_parquet(pq_path, index=False)
        written += [md, pq_path]
    return written


# ================================================================================================
# 4. The runs table and the evaluation report of the assets' models
# ================================================================================================
RUN_ROLES = ("mtl", "baseline", "ensemble", "mc_dropout", "finetuned")
RUNS_COLUMNS = ("run_id", "role", "asset", "name", "created_at", "dagster_run_id", "config_hash", "manifest_hash",
                "model_path", "train_keys", "seed", "tasks", "height", "width", "epochs", "batch_size",
                "learning_rate", "label_plan", "spec", "budget", "metrics", "hmi_test_breastbin_auc",
                "inb_breastbin_auc", "train_seconds")


def runs_table_path(models_root: Path) -> Path:
    return Path(models_root) / "runs.parquet"


def run_record(summary: Mapping, *, asset: str, created_at: str, dagster_run_id: str = "") -> dict:
    """One runs-table row from a ``summary.json`` written by the training process."""
    cfg = summary["train_config"]
    metrics = summary.get("metrics", {})
    return {
        "run_id": summary["eval_key"], "role": summary["role"], "asset": asset, "name": summary["name"],
        "created_at": created_at, "dagster_run_id": dagster_run_id, "config_hash": summary["config_hash"],
        "manifest_hash": summary["manifest_hash"], "model_path": "; ".join(summary["model_paths"]),
        "train_keys": json.dumps(summary["train_keys"]), "seed": int(summary["seed"]),
        "tasks": ",".join(cfg["tasks"]), "height": int(cfg["height"]), "width": int(cfg["width"]),
        "epochs": int(cfg["epochs"]), "batch_size": int(cfg["batch_size"]), "learning_rate": float(cfg["learning_rate"]),
        "label_plan": json.dumps(summary["spec"]["labels"], sort_keys=True),
        "spec": json.dumps(summary["spec"], sort_keys=True), "budget": json.dumps(summary["budget"], sort_keys=True),
        "metrics": json.dumps(metrics, sort_keys=True),
        "hmi_test_breastbin_auc": (metrics.get("hmi_test") or {}).get("breastbin_auc"),
        "inb_breastbin_auc": (metrics.get("inb") or {}).get("breastbin_auc"),
        "train_seconds": (summary.get("timing") or {}).get("seconds"),
    }


def append_runs(models_root: Path, records: Sequence[Mapping]) -> pd.DataFrame:
    """Append rows to ``models/runs.parquet`` (a history: a retrain adds a row, never rewrites one)."""
    path = runs_table_path(models_root)
    new = pd.DataFrame([{c: r.get(c) for c in RUNS_COLUMNS} for r in records], columns=list(RUNS_COLUMNS))
    old = pd.read_parquet(path) if path.is_file() else pd.DataFrame(columns=list(RUNS_COLUMNS))
    frames = [f for f in (old, new) if not f.empty]
    table = pd.concat(frames, ignore_index=True) if frames else new
    for col in ("hmi_test_breastbin_auc", "inb_breastbin_auc", "train_seconds", "learning_rate"):
        table[col] = pd.to_numeric(table[col], errors="coerce")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    table.to_parquet(tmp, index=False)
    tmp.replace(path)
    return table


def latest_runs(models_root: Path, roles: Sequence[str] = RUN_ROLES) -> dict[str, dict]:
    """The most recent row per role (what the evaluation reports)."""
    path = runs_table_path(models_root)
    if not path.is_file():
        return {}
    table = pd.read_parquet(path)
    out = {}
    for role in roles:
        part = table[table["role"] == role]
        if len(part):
            out[role] = part.sort_values("created_at", kind="mergesort").iloc[-1].to_dict()
    return out


def evaluate_runs(models_root: Path, reports_root: Path, *, n_bootstrap: int = M.DEFAULT_BOOTSTRAP, seed: int = 0,
                  tsne: bool = True, log: Callable[[str], None] = print) -> tuple[dict, dict[str, Path]]:
    """Evaluate the latest run of each role on every test set it predicted, write
    ``reports/evaluation.json`` and the plots; returns ``(document, {plot name: path})``.

    p-values are DeLong tests against the MTL model on the same images (the paper's "p-value to ours").
    """
    from model import plots as P

    runs = latest_runs(models_root)
    if "mtl" not in runs:
        raise FileNotFoundError(f"no MTL run in {runs_table_path(models_root)}; materialise mtl_model first")
    preds: dict[str, dict[str, pd.DataFrame]] = {}
    for role, rec in runs.items():
        for ds in DATASETS:
            f = Path(models_root) / rec["run_id"] / "predictions" / f"{ds}.parquet"
            if f.is_file():
                preds.setdefault(role, {})[ds] = pd.read_parquet(f)
            else:
                log(f"{role}: no predictions for {ds} ({f} missing)")
    models: dict[str, dict] = {}
    for role, by_ds in preds.items():
        for ds, frame in by_ds.items():
            ref = preds.get("mtl", {}).get(ds) if role != "mtl" else None
            m = M.evaluate_predictions(frame, n_bootstrap=n_bootstrap, seed=seed, reference=ref)
            m.update(run_id=runs[role]["run_id"], config_hash=runs[role]["config_hash"],
                     manifest_hash=runs[role]["manifest_hash"])
            models.setdefault(role, {})[ds] = m
    plots: dict[str, Path] = {}
    plot_dir = Path(reports_root) / "plots"
    for ds in DATASETS:
        breasts = {role: M.breast_level(by[ds]) for role, by in preds.items() if ds in by and "p_breastbin" in by[ds]}
        curves = {role: (b["breastbin"].to_numpy(dtype=float), b["p_breastbin"].to_numpy(dtype=float))
                  for role, b in breasts.items()}
        if not curves:
            continue
        plots[f"roc_{ds}"] = P.roc_plot(curves, plot_dir / f"roc_{ds}.png", f"Breast-wise ROC — {ds}")
        plots[f"calibration_{ds}"] = P.calibration_plot(curves, plot_dir / f"calibration_{ds}.png",
                                                        f"Calibration — {ds}")
        mtl = preds.get("mtl", {}).get(ds)
        if mtl is None:
            continue
        for task in ("acr", "density"):
            if all(c in mtl.columns for c in M.class_probability_columns(task)):
                cm = M.task_confusion_matrix(mtl, task)
                plots[f"confusion_{task}_{ds}"] = P.confusion_plot(
                    cm, [str(c) for c in TASKS[task]], plot_dir / f"confusion_{task}_{ds}.png",
                    f"MTL {task} — {ds}")
        if tsne and P.latent_columns(mtl) and len(mtl) >= 5:
            plots[f"tsne_{ds}"] = P.tsne_plot(mtl, plot_dir / f"tsne_{ds}.png", f"MTL latent z — {ds}", seed=seed)
    doc_extra = {"verdict": verdict(models), "n_bootstrap": n_bootstrap,
                 "plots": {k: str(v.relative_to(reports_root)) for k, v in sorted(plots.items())}}
    M.write_evaluation_json(Path(reports_root) / "evaluation.json", models, doc_extra)
    return {"models": models, **doc_extra}, plots


def verdict(models: Mapping[str, Mapping[str, dict]], dataset: str = "hmi_test") -> str:
    """One honest sentence: does the MTL model beat the single-task baseline, with CIs and p."""
    mtl, base = models.get("mtl", {}).get(dataset), models.get("baseline", {}).get(dataset)
    if not mtl or not base or mtl.get("breastbin_auc") is None or base.get("breastbin_auc") is None:
        return f"MTL vs baseline on {dataset}: not comparable (missing runs or a single-class test set)."
    a, b = mtl["breastbin_auc"], base["breastbin_auc"]
    ca, cb = mtl["breastbin_auc_ci"], base["breastbin_auc_ci"]
    p = base.get("p_value_vs_reference")
    word = "beats" if a > b else ("ties" if a == b else "does NOT beat")
    sig = "" if p is None else (" (significant, DeLong p={:.3g})" if p < 0.05 else " (not significant, DeLong p={:.3g})").format(p)
    fmt = lambda x: "n/a" if x is None else f"{100 * x:.1f}"  # noqa: E731
    return (f"On {dataset}, MTL breast AUC {fmt(a)} [{fmt(ca[0])}-{fmt(ca[1])}] {word} the single-task baseline "
            f"{fmt(b)} [{fmt(cb[0])}-{fmt(cb[1])}]{sig}.")

