"""Evaluation and the paper's experiments as Dagster assets, jobs, a sensor and a schedule.

* ``evaluation`` — the latest run of every role (mtl, baseline, ensemble, mc_dropout, finetuned) on
  hmi test and inb: ``$MAMMO_HOME/reports/evaluation.json`` + plots (ROC, calibration, confusion
  matrices, t-SNE of z) under ``reports/plots/``, shown in the metadata. Runs in the code server:
  it reads predictions the training process wrote; no TensorFlow here.
* ``experiment_tables`` — Tables 2–9 through the training process (Pipes), one job per table with
  its run config pre-filled in the launchpad.
* ``adjudication_retrain_sensor`` — requests a retrain once enough new annotator decisions have
  accumulated in ``labels/adjudications.parquet``; ``weekly_retrain_schedule`` is the optional
  calendar variant. Both start stopped: retraining is a decision a person switches on.
"""


import base64
import os
import sys
from pathlib import Path
from typing import Literal

import dagster as dg
import pyarrow.parquet as pq
from pydantic import Field

from model import experiments as X
from model import metrics as M
from model.report_tables import evaluation_grid, render
from pipelines.resources import MammoHomeResource

from assets.training import TRAINING_POOL, TRAINING_RETRY, one_training_at_a_time

RETRAIN_THRESHOLD_ENV = "MAMMO_RETRAIN_THRESHOLD"
DEFAULT_RETRAIN_THRESHOLD = 50


class EvaluationConfig(dg.Config):
    n_bootstrap: int = Field(M.DEFAULT_BOOTSTRAP, description="bootstrap resamples for the 95% CIs (0: no CI)")
    seed: int = Field(0, description="seed of the bootstrap and of the t-SNE")
    tsne: bool = Field(True, description="draw the t-SNE of the latent z (paper Fig. 6)")


def _png_markdown(plots: dict[str, Path], names: list[str]) -> str:
    parts = []
    for name in names:
        if name in plots:
            data = base64.b64encode(Path(plots[name]).read_bytes()).decode()
            parts.append(f"**{name}**\n\n![{name}](data:image/png;base64,{data})")
    return "\n\n".join(parts) or "no plot"


def _metrics_markdown(models: dict) -> str:
    return render(evaluation_grid(models), "markdown")


@dg.asset(deps=["mtl_model", "baseline_models", "finetuned_model"], group_name="evaluation", kinds={"json"},
          description="Paper metrics of the latest models on hmi test and inb: reports/evaluation.json and plots.")
def evaluation(context: dg.AssetExecutionContext, config: EvaluationConfig, mammo: MammoHomeResource) -> dg.MaterializeResult:
    home = mammo.home()
    try:
        doc, plots = X.evaluate_runs(home.models, home.reports, n_bootstrap=config.n_bootstrap, seed=config.seed,
                                     tsne=config.tsne, log=context.log.warning)
    except FileNotFoundError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    context.log.info(doc["verdict"])
    for w in doc.get("warnings", []):
        context.log.warning(f"degenerate task: {w}")
    md: dict = {
        "evaluation_json": dg.MetadataValue.path(str(home.evaluation_json)),
        "verdict": doc["verdict"],
        "metrics": dg.MetadataValue.md(_metrics_markdown(doc["models"])),
        "plots_dir": dg.MetadataValue.path(str(home.reports / "plots")),
        "warnings": dg.MetadataValue.json(doc.get("warnings", [])),
        "runs_index": dg.MetadataValue.path(str(home.reports / doc["runs"]["index"])),
        "n_runs_evaluated": doc["runs"]["n_runs"],
        "roc_and_tsne": dg.MetadataValue.md(_png_markdown(plots, [k for k in sorted(plots) if k.startswith(("roc", "tsne"))])),
        "calibration_and_confusion": dg.MetadataValue.md(
            _png_markdown(plots, [k for k in sorted(plots) if k.startswith(("calibration", "confusion"))])),
    }
    for role, by_ds in doc["models"].items():
        for ds, m in by_ds.items():
            if m.get("breastbin_auc") is not None:
                md[f"{role}/{ds}/breastbin_auc"] = float(m["breastbin_auc"])
    return dg.MaterializeResult(metadata=md)


# ------------------------------------------------------------------------------------------------
class ExperimentTablesConfig(dg.Config):
    tables: list[str] = Field(["2_3"], description="paper tables to (re)build: 2_3, 4, 5, 6_7, 8_9 (or 2..9)")
    budget: Literal["demo", "small", "bench", "paper"] = Field(
        "demo", description="demo: the assets' own models (Table 2/3 needs no new training); small: minutes per "
                            "model on a CPU; bench: the CPU benchmark protocol, 3 seeds per arm "
                            "(bench/README_experiments.md); paper: the paper's protocol (GPU)")


@dg.asset(deps=["split_manifests", "mtl_model", "baseline_models"], group_name="evaluation", kinds={"tensorflow", "parquet"},
          pool=TRAINING_POOL, retry_policy=TRAINING_RETRY,
          description="The paper's Tables 2-9 regenerated on our data: reports/tables/table_{n}.md and .parquet.")
def experiment_tables(context: dg.AssetExecutionContext, config: ExperimentTablesConfig, mammo: MammoHomeResource,
                      pipes: dg.PipesSubprocessClient) -> dg.MaterializeResult:
    from model.training_job import JobRequest

    home = mammo.home()
    try:
        tables = X.resolve_tables(config.tables)
    except ValueError as exc:
        raise dg.Failure(description=f"invalid experiment_tables run config: {exc}", allow_retries=False) from exc
    req = JobRequest(action="experiments", home=str(home.root), budget=X.budget(config.budget), tables=tables)
    req_path = home.models / "requests" / f"experiments-{'-'.join(tables)}-{config.budget}.json"
    req_path.parent.mkdir(parents=True, exist_ok=True)
    req_path.write_text(req.model_dump_json(indent=2))
    with one_training_at_a_time(home, context.log.info):
        reported = pipes.run(command=[sys.executable, "-m", "model.training_job", str(req_path)], context=context,
                             env={"MAMMO_HOME": str(home.root), "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONHASHSEED": "0"}
                             ).get_materialize_result()
    md = dict(reported.metadata or {})
    md["tables_dir"] = dg.MetadataValue.path(str(home.reports / "tables"))
    for key in tables:
        for t in X.EXPERIMENTS[key].tables:
            path = home.reports / "tables" / f"table_{t}.md"
            if path.is_file():
                md[f"table_{t}"] = dg.MetadataValue.md(path.read_text())
    return dg.MaterializeResult(metadata=md)


experiment_jobs = [
    dg.define_asset_job(
        f"experiment_table_{key}", selection=[experiment_tables],
        config={"ops": {"experiment_tables": {"config": {"tables": [key], "budget": "small"}}}},
        description=f"Paper Table(s) {', '.join(spec.tables)}: {spec.title}. Edit budget/tables in the launchpad.")
    for key, spec in X.EXPERIMENTS.items()
]

retrain_job = dg.define_asset_job(
    "retrain_on_new_labels", selection=["split_manifests", "mtl_model", "evaluation"],
    description="Rebuild the manifests from the current labels (adjudications included), retrain the MTL model "
                "and re-evaluate. A model whose configuration and manifest did not change is reused.")


def retrain_threshold() -> int:
    raw = os.environ.get(RETRAIN_THRESHOLD_ENV, str(DEFAULT_RETRAIN_THRESHOLD))
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{RETRAIN_THRESHOLD_ENV}={raw!r} must be a positive integer") from None
    if value <= 0:
        raise ValueError(f"{RETRAIN_THRESHOLD_ENV}={value} must be a positive integer")
    return value


def adjudication_count(home) -> int:
    path = home.adjudications_path
    return pq.ParquetFile(path).metadata.num_rows if path.is_file() else 0


@dg.sensor(job=retrain_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED,
           description=f"Requests a retrain when labels/adjudications.parquet has grown by at least "
                       f"${RETRAIN_THRESHOLD_ENV} (default {DEFAULT_RETRAIN_THRESHOLD}) decisions since the last one.")
def adjudication_retrain_sensor(context: dg.SensorEvaluationContext, mammo: MammoHomeResource):
    threshold = retrain_threshold()
    count = adjudication_count(mammo.home())
    last = int(context.cursor) if context.cursor else 0
    if count < last:  # the file was rebuilt smaller (e.g. a reset review DB): count from here
        context.update_cursor(str(count))
        return dg.SkipReason(f"adjudications shrank from {last} to {count} rows; counting again from {count}")
    if count - last < threshold:
        return dg.SkipReason(f"{count - last} new adjudication(s) since the last retrain; threshold {threshold}")
    context.update_cursor(str(count))
    return dg.RunRequest(run_key=f"adjudications-{count}",
                         tags={"mammo/trigger": "adjudications", "mammo/adjudications": str(count)})


weekly_retrain_schedule = dg.ScheduleDefinition(
    name="weekly_retrain", job=retrain_job, cron_schedule="0 3 * * 0", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Optional: rebuild manifests, retrain and re-evaluate every Sunday 03:00 UTC.")

defs = dg.Definitions(assets=[evaluation, experiment_tables], jobs=[*experiment_jobs, retrain_job],
                      sensors=[adjudication_retrain_sensor], schedules=[weekly_retrain_schedule])
