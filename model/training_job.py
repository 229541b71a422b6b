"""The training process: ``python -m model.training_job <request.json>``.

The Dagster assets launch this script through Dagster Pipes (``dg.PipesSubprocessClient``) so that
TensorFlow's memory, threads and crashes live and die in a child process, never in the code server.
Run by hand (no Pipes environment) it does the same work and prints what it would report.

The request (:class:`JobRequest`) names experiment rows (:class:`model.experiments.RunSpec`), a
budget and a seed. The script expands them into content-addressed train/predict jobs, runs them
with :class:`ModelExecutor` (``model.train.train`` / ``model.predict.predict``), writes predictions
of the test sets and a ``summary.json`` per row, and reports a materialisation with its metadata.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from curation.home import MammoHome
from model import experiments as X
from model import metrics as M

SUMMARY_FILE = "summary.json"


class JobRequest(BaseModel):
    """What one training process does; written as JSON by the asset, validated here."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field("runs", pattern="^(runs|experiments)$")
    home: str
    budget: X.Budget
    specs: list[X.RunSpec] = Field(default_factory=list, description="rows to train and predict (action=runs)")
    outputs: dict[str, str] = Field(default_factory=dict, description="spec name -> role recorded in runs.parquet")
    seed: int = Field(0, ge=0)
    datasets: list[str] = Field(default_factory=lambda: list(X.DATASETS))
    retrain: bool = False
    tables: list[str] = Field(default_factory=list, description="experiments to run (action=experiments)")


# ------------------------------------------------------------------------------------------------
# The executor: the only place that touches TensorFlow
# ------------------------------------------------------------------------------------------------
class ModelExecutor:
    """Trains with ``model.train.train`` and predicts with ``model.predict.predict``; an ensemble's
    prediction is the mean of its members' probabilities (paper 3.3.1)."""

    def __init__(self, image_root: Path, val_rows: Mapping[str, pd.DataFrame] | None = None):
        self.image_root = Path(image_root)
        self.val_rows = dict(val_rows or {})
        self.timings: dict[str, float] = {}

    def train(self, job: X.TrainJob, rows: pd.DataFrame, out_dir: Path, init_model: Path | None) -> Path:
        from model.config import TrainConfig
        from model.train import train

        config = TrainConfig.model_validate(job.train_config)
        val = self.val_rows.get(job.train_on[0])
        t0 = time.perf_counter()
        result = train(config, rows, val, self.image_root, out_dir, init_model=init_model)
        seconds = time.perf_counter() - t0
        self.timings[job.key] = seconds
        (out_dir / "timing.json").write_text(json.dumps(
            {"seconds": round(seconds, 1), "images": len(rows), "epochs": config.epochs,
             "images_per_second": round(len(rows) * config.epochs / max(seconds, 1e-9), 1),
             "best_epoch": result.best_epoch, "selection_metric": result.selection_metric,
             "selected_on_validation": result.selected_on_validation, "width": result.config.width,
             "tissue_cut_images": result.tissue_cut, "tf_threads": _tf_threads()}, indent=2, sort_keys=True))
        return Path(result.model_path)

    def predict(self, model_paths: Sequence[Path], rows: pd.DataFrame, mc_passes: int, latent: bool) -> pd.DataFrame:
        from model.predict import predict

        frames = [predict(p, rows, self.image_root, mc_passes=mc_passes, return_latent=latent and i == 0)
                  for i, p in enumerate(model_paths)]
        return average_predictions(frames)


def _tf_threads() -> dict:
    """TensorFlow's thread counts for this training (0: TensorFlow's default, all cores)."""
    import tensorflow as tf

    return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}


def average_predictions(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Mean of the ``p_*`` columns over models (aligned on image_key); keys and z from the first."""
    if not frames:
        raise ValueError("no predictions to average")
    base = frames[0].sort_values("image_key", kind="mergesort").reset_index(drop=True)
    if len(frames) == 1:
        return base
    p_cols = [c for c in base.columns if c.startswith("p_")]
    stack = []
    for f in frames:
        f = f.sort_values("image_key", kind="mergesort").reset_index(drop=True)
        if not f["image_key"].equals(base["image_key"]):
            raise ValueError("ensemble members predicted different images")
        stack.append(f[p_cols].to_numpy(dtype=float))
    out = base.copy()
    out[p_cols] = np.mean(stack, axis=0)
    return out


# ------------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------------
def load_manifests(home: MammoHome, needed: Sequence[tuple[str, str]]) -> dict[tuple[str, str], pd.DataFrame]:
    from curation.manifests import read_manifest

    return {tuple(k): read_manifest(home, k[0], k[1]) for k in dict.fromkeys(tuple(k) for k in needed)}


def _needed(specs: Sequence[X.RunSpec], datasets: Sequence[str]) -> list[tuple[str, str]]:
    return [tuple(s.train_on) for s in specs] + [X.DATASETS[d] for d in datasets]


def _val_rows(home: MammoHome) -> dict[str, pd.DataFrame]:
    from curation.manifests import read_manifest

    val = read_manifest(home, "hmi", "val")
    return {"hmi": val} if len(val) else {}


# ------------------------------------------------------------------------------------------------
# action=runs: the assets' training
# ------------------------------------------------------------------------------------------------
def run_rows(req: JobRequest, executor, log=print) -> dict[str, dict]:
    """Train and predict the requested rows; returns ``{spec name: summary}`` and writes each
    summary to ``models/<eval key>/summary.json``."""
    home = MammoHome.from_env(req.home)
    manifests = load_manifests(home, _needed(req.specs, req.datasets))
    hashes = {k: X.frame_hash(v) for k, v in manifests.items()}
    by_name = {s.name: s for s in req.specs}
    evals = {s.name: X.expand(s, req.budget, req.seed, by_name, hashes) for s in req.specs if s.name in req.outputs}
    # an explicit retrain redoes the requested rows, never the models they start from
    retrain = {j.key for ev in evals.values() for j in ev.members} if req.retrain else set()
    retrain |= {(ev.key, ds) for ev in evals.values() for ds in req.datasets} if req.retrain else set()
    runner = X.Runner(home.models, manifests, executor, log, retrain=retrain)
    summaries: dict[str, dict] = {}
    for spec in req.specs:
        if spec.name not in req.outputs:
            continue
        ev = evals[spec.name]
        metrics = {}
        for ds in req.datasets:
            rows = manifests.get(X.DATASETS[ds])
            if rows is None or rows.empty:
                log(f"{ds}: no manifest rows, not evaluated")
                continue
            preds = runner.predictions(ev, ds)
            m = M.evaluate_predictions(preds, n_bootstrap=0)
            metrics[ds] = {k: m.get(k) for k in ("breastbin_auc", "image_breastbin_auc", "view_auc",
                                                  "acr_wacc", "density_wacc", "n_images")}
        members = [runner.model_path(j) for j in ev.members]
        summary = {
            "name": spec.name, "role": req.outputs[spec.name], "eval_key": ev.key,
            "train_keys": [j.key for j in ev.members], "model_paths": [str(p) for p in members],
            "config_hash": X._digest([j.train_config for j in ev.members]),
            "manifest_hash": ev.members[0].manifest_hash, "seed": req.seed,
            "spec": spec.model_dump(mode="json"), "budget": req.budget.model_dump(mode="json"),
            "train_config": ev.members[0].train_config, "mc_passes": ev.mc_passes,
            "label_counts": _read_json(home.models / ev.members[0].key / X.JOB_FILE).get("label_counts", {}),
            "timing": _read_json(home.models / ev.members[0].key / "timing.json"),
            "metrics": metrics,
        }
        out = home.models / ev.key / SUMMARY_FILE
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(summary, indent=2, sort_keys=True, default=_json_default))
        summaries[spec.name] = summary
    return summaries


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _json_default(v):
    if isinstance(v, (np.floating, float)):
        return None if not np.isfinite(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return str(v)


# ------------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------------
class _Console:
    """Stand-in for the Pipes context when the script runs by hand."""

    class _Log:
        def info(self, msg):
            print(msg, flush=True)

        warning = error = info

    log = _Log()

    def report_asset_materialization(self, metadata=None, **_):
        print(json.dumps({"materialization": metadata}, indent=2, default=str), flush=True)


@contextmanager
def _context() -> Iterator:
    from dagster_pipes import DAGSTER_PIPES_CONTEXT_ENV_VAR, open_dagster_pipes

    if os.environ.get(DAGSTER_PIPES_CONTEXT_ENV_VAR):
        with open_dagster_pipes() as pipes:
            yield pipes
    else:
        yield _Console()


def materialization_metadata(summaries: Mapping[str, dict]) -> dict:
    """Flat, comparable metadata: one entry per row and dataset (the UI plots numeric metadata)."""
    md: dict = {}
    for s in summaries.values():
        role = s["role"]
        md[f"{role}/eval_key"] = s["eval_key"]
        md[f"{role}/model_path"] = s["model_paths"][0] if len(s["model_paths"]) == 1 else "; ".join(s["model_paths"])
        md[f"{role}/config_hash"] = s["config_hash"]
        md[f"{role}/manifest_hash"] = s["manifest_hash"]
        if s.get("timing"):
            t = s["timing"]
            md[f"{role}/train_seconds"] = t.get("seconds")
            for k in ("selection_metric", "selected_on_validation", "width", "tissue_cut_images"):
                if t.get(k) is not None:
                    md[f"{role}/{k}"] = t[k]
        for ds, m in s["metrics"].items():
            for k in ("breastbin_auc", "view_auc", "acr_wacc", "density_wacc"):
                if m.get(k) is not None:
                    md[f"{role}/{ds}/{k}"] = float(m[k])
    return md


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        print("usage: python -m model.training_job <request.json>", file=sys.stderr)
        return 2
    req = JobRequest.model_validate_json(Path(argv[0]).read_text())
    home = MammoHome.from_env(req.home)
    with _context() as pipes:
        log = pipes.log.info
        executor = ModelExecutor(home.cache, _val_rows(home))
        if req.action == "runs":
            summaries = run_rows(req, executor, log)
            pipes.report_asset_materialization(metadata=materialization_metadata(summaries))
        else:
            specs = [s for k in X.resolve_tables(req.tables) for s in X.EXPERIMENTS[k].runs]
            manifests = load_manifests(home, _needed(specs, list(X.DATASETS)))
            written = X.run_experiments(home.models, home.reports / "tables", manifests, executor,
                                        req.tables, req.budget, log=log)
            pipes.report_asset_materialization(metadata={
                "tables": ", ".join(sorted({p.stem for ps in written.values() for p in ps})),
                "budget": req.budget.name,
                **{f"table_{p.stem.split('_', 1)[1]}": {"raw_value": p.read_text(), "type": "md"}
                   for ps in written.values() for p in ps if p.suffix == ".md"}})
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
