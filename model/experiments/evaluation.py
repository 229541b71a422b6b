"""The evaluation report of the assets' models.

``reports/evaluation.json`` keeps its shape — the latest run per role — and every run is kept and
addressable too: ``reports/runs/<run_id>/evaluation.json`` per recorded run (seeds and label-fraction
runs no longer overwrite each other) and ``reports/runs/index.parquet`` listing them. A task whose
test set has one class (all MLO, no cancer) is named in a warning instead of a silent ``None``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd

from curation.tasks import TASKS
from model import metrics as M
from model.experiments.budgets import DATASETS
from model.experiments.runs import all_runs, latest_runs, runs_table_path

RUNS_REPORT_DIR = "runs"
RUN_INDEX_COLUMNS = ("run_id", "role", "name", "seed", "created_at", "evaluation", "hmi_test_breastbin_auc",
                     "inb_breastbin_auc")


def _predictions(models_root: Path, run_id: str, log) -> dict[str, pd.DataFrame]:
    out = {}
    for ds in DATASETS:
        f = Path(models_root) / run_id / "predictions" / f"{ds}.parquet"
        if f.is_file():
            out[ds] = pd.read_parquet(f)
        else:
            log(f"{run_id}: no predictions for {ds} ({f} missing)")
    return out


def degenerate_warnings(role: str, dataset: str, preds: pd.DataFrame) -> list[str]:
    return [f"{role}/{dataset}: {task} — {why}" for task, why in M.degenerate_tasks(preds).items()]


def _plain(v):
    """A runs-table cell as JSON: NaN/NA -> None, numpy scalars -> Python."""
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    return v.item() if hasattr(v, "item") else v


def _write_json(path: Path, doc: Mapping) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n")
    tmp.replace(path)


def evaluate_every_run(models_root: Path, reports_root: Path, reference: Mapping[str, pd.DataFrame], *,
                       n_bootstrap: int, seed: int, refresh: frozenset[str] = frozenset(),
                       log: Callable[[str], None] = print) -> pd.DataFrame:
    """``reports/runs/<run_id>/evaluation.json`` for every run in the runs table (p-values against
    ``reference``, the latest MTL run's predictions) and ``reports/runs/index.parquet``. A run already
    evaluated keeps its file unless its id is in ``refresh`` (the latest runs are re-evaluated)."""
    rows = []
    for rec in all_runs(models_root).to_dict("records"):
        rec = {k: _plain(v) for k, v in rec.items()}
        run_id, role = rec["run_id"], rec["role"]
        out = Path(reports_root) / RUNS_REPORT_DIR / run_id / "evaluation.json"
        if out.is_file() and run_id not in refresh:
            old = json.loads(out.read_text())
            rows.append({"run_id": run_id, "role": role, "name": rec.get("name"), "seed": rec.get("seed"),
                         "created_at": rec.get("created_at"), "evaluation": str(out.relative_to(reports_root)),
                         "hmi_test_breastbin_auc": old["datasets"].get("hmi_test", {}).get("breastbin_auc"),
                         "inb_breastbin_auc": old["datasets"].get("inb", {}).get("breastbin_auc")})
            continue
        models: dict = {}
        for ds, frame in _predictions(models_root, run_id, lambda m: None).items():
            ref = reference.get(ds) if role != "mtl" else None
            m = M.evaluate_predictions(frame, n_bootstrap=n_bootstrap, seed=seed, reference=ref)
            m["degenerate_tasks"] = M.degenerate_tasks(frame)
            models[ds] = m
        _write_json(out, {"run_id": run_id, "role": role, "name": rec.get("name"), "seed": rec.get("seed"),
                          "created_at": rec.get("created_at"), "config_hash": rec.get("config_hash"),
                          "manifest_hash": rec.get("manifest_hash"), "datasets": models})
        rows.append({"run_id": run_id, "role": role, "name": rec.get("name"), "seed": rec.get("seed"),
                     "created_at": rec.get("created_at"), "evaluation": str(out.relative_to(reports_root)),
                     "hmi_test_breastbin_auc": models.get("hmi_test", {}).get("breastbin_auc"),
                     "inb_breastbin_auc": models.get("inb", {}).get("breastbin_auc")})
    index = pd.DataFrame(rows, columns=list(RUN_INDEX_COLUMNS))
    path = Path(reports_root) / RUNS_REPORT_DIR / "index.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    index.to_parquet(path.with_suffix(".parquet.tmp"), index=False)
    path.with_suffix(".parquet.tmp").replace(path)
    return index


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
        got = _predictions(models_root, rec["run_id"], lambda m, role=role: log(f"{role}: {m}"))
        if got:
            preds[role] = got
    models: dict[str, dict] = {}
    warnings: list[str] = []
    for role, by_ds in preds.items():
        for ds, frame in by_ds.items():
            for w in degenerate_warnings(role, ds, frame):
                log(f"warning: {w}")
                warnings.append(w)
            ref = preds.get("mtl", {}).get(ds) if role != "mtl" else None
            m = M.evaluate_predictions(frame, n_bootstrap=n_bootstrap, seed=seed, reference=ref)
            m.update(run_id=runs[role]["run_id"], config_hash=_plain(runs[role].get("config_hash")),
                     manifest_hash=_plain(runs[role].get("manifest_hash")))
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
    index = evaluate_every_run(models_root, reports_root, preds.get("mtl", {}), n_bootstrap=n_bootstrap,
                               seed=seed, refresh=frozenset(r["run_id"] for r in runs.values()), log=log)
    doc_extra = {"verdict": verdict(models), "n_bootstrap": n_bootstrap, "warnings": warnings,
                 "runs": {"index": f"{RUNS_REPORT_DIR}/index.parquet", "n_runs": int(len(index)),
                          "latest": {role: f"{RUNS_REPORT_DIR}/{rec['run_id']}/evaluation.json"
                                     for role, rec in sorted(runs.items())}},
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

