"""Running experiments: the :class:`Runner` caches trained models and predictions on disk, and
:func:`run_experiments` walks a table's rows over seeds through an injected :class:`Executor` (the
real one, ``model.training_job.ModelExecutor``, calls ``model.train`` / ``model.predict``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping, Protocol, Sequence

import pandas as pd

from label_mining.training_policies import apply_label_plan, as_object, label_counts
from model import metrics as M
from model.experiments.budgets import DATASETS, Budget
from model.experiments.jobs import EvalJob, TrainJob, expand, frame_hash
from model.experiments.specs import EXPERIMENTS, TableSpec, reference_name, resolve_tables
from model.experiments.tables import write_tables


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
    rows = as_object(rows)
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


def table_plan(key: str, b: Budget, manifest_hashes: Mapping[tuple[str, str], str]
               ) -> tuple[TableSpec, list[dict[str, EvalJob]]]:
    """A table's rows (the ensemble row left out when ``b.ensemble_size`` is 1: an "ensemble" of one
    model is the baseline again) and, per seed, the eval job behind each row."""
    spec = EXPERIMENTS[key]
    by_name = {r.name: r for r in spec.runs}
    if b.ensemble_size == 1 and any(r.role == "ensemble" for r in spec.runs):
        spec = replace(spec, runs=tuple(r for r in spec.runs if r.role != "ensemble"))
    return spec, [{r.name: expand(r, b, seed, by_name, manifest_hashes) for r in spec.runs}
                  for seed in range(b.seeds)]


def run_experiments(models_root: Path, tables_root: Path, manifests: Mapping[tuple[str, str], pd.DataFrame],
                    executor: Executor, tables: Sequence[str], b: Budget,
                    log: Callable[[str], None] = print) -> dict[str, list[Path]]:
    """Train/evaluate every row of the requested experiments at every seed and write their tables
    (and ``seed_results_<key>.json``: the per-seed metrics every mean, sd and test is computed from).

    Returns ``{experiment key: [written files]}``.
    """
    hashes = {k: frame_hash(v) for k, v in manifests.items()}
    runner = Runner(models_root, manifests, executor, log)
    written: dict[str, list[Path]] = {}
    for key in resolve_tables(tables):
        spec, plan = table_plan(key, b, hashes)
        if len(spec.runs) < len(EXPERIMENTS[key].runs):
            log(f"{key}: ensemble_size=1, so the ensemble row is left out (it would repeat the baseline)")
        ref_name = reference_name(spec)
        datasets = [ds for ds in spec.datasets if not manifests.get(DATASETS[ds], pd.DataFrame()).empty]
        skipped = sorted(set(spec.datasets) - set(datasets))
        if skipped:
            log(f"{key}: no manifest rows for {', '.join(skipped)}; those columns are left out")
        results: dict[str, dict[str, list[dict]]] = {}
        for seed, jobs in enumerate(plan):
            for ds in datasets:
                ref = runner.predictions(jobs[ref_name], ds)
                for r in spec.runs:
                    preds = runner.predictions(jobs[r.name], ds)
                    metrics = M.evaluate_predictions(preds, n_bootstrap=b.n_bootstrap, seed=seed,
                                                     reference=None if r.name == ref_name else ref)
                    metrics["seed"] = seed
                    metrics["eval_key"] = jobs[r.name].key
                    results.setdefault(r.name, {}).setdefault(ds, []).append(metrics)
        written[key] = write_tables(spec, results, tables_root, b)
        log(f"table(s) {', '.join(spec.tables)} written: {', '.join(str(p) for p in written[key])}")
    return written
