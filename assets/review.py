"""Review feedback loop as Dagster assets (thin glue over :mod:`review_app`).

``review_queue`` (flagged labels -> ``labels/review_queue.parquet`` and the app database),
``adjudications`` (the app's decisions -> ``labels/adjudications.parquet``), and the
``review_decisions_sensor``: new decisions -> materialise ``adjudications``; a new
``adjudications`` materialisation -> re-run ``image_labels`` for every batch, which applies the
decisions (confirmed label: u = 0, source ``review``). Manifests and retraining stay with the
scientist: a handful of decisions should not retrain a network on its own.
"""


import json
from pathlib import Path

import dagster as dg
import pandas as pd

from curation.tasks import TASKS
from pipelines.resources import MammoHomeResource, ReviewDatabaseResource
from review_app.export import effective_decisions
from review_app.queue import QueueConfig
from review_app.settings import default_db_url
from review_app.storage import DECISIONS
from review_app.tables import (adjudications_path, build_queue_for_home, decision_count, export_adjudications,
                               queue_path, sync_into_db, write_queue)

QUEUE_PREVIEW = ["priority", "task", "target_level", "label", "u", "reasons", "model_label"]


def _db_url(explicit: str, review_db: ReviewDatabaseResource, home) -> str:
    return explicit or review_db.url_for(home)


def _counts_md(title: str, counts: pd.Series) -> str:
    rows = "\n".join(f"| {k} | {int(v)} |" for k, v in counts.items()) or "| – | 0 |"
    return f"| {title} | n |\n|---|---|\n{rows}"


class ReviewQueueConfig(dg.Config):
    u_threshold: float = 0.5
    """Queue labels whose uncertainty u is at least this."""
    model_disagreement: float = 0.9
    """Queue labels when the model gives at least this probability to another class."""
    include_missing: bool = False
    """Also queue missing labels without a conflict (labelling from scratch)."""
    max_items: int = 0
    """Keep only the first N items after ordering; 0 keeps all."""
    predictions_path: str = ""
    """model.predict output (parquet) for the model-disagreement reason; empty = the latest run's
    models/<run>/predictions/*.parquet written by the evaluation (metadata says which, or that none exist)."""
    db_url: str = ""
    """Review app database for this run only; empty means the ``review_db`` resource ($MAMMO_REVIEW_DB or
    $MAMMO_HOME/review/review.db)."""
    sync_db: bool = True
    """Load the queue into the app database after writing the parquet."""


@dg.asset(
    group_name="review", kinds={"parquet", "sqlite"},
    deps=["breast_labels", "image_labels", "dicom_catalog", "preprocessed_images"],
    description="Labels an annotator should look at, in priority order (conflicts with pathology first, then "
                "other conflicts, strong model disagreement, high u): labels/review_queue.parquet, synced "
                "into the review app.",
)
def review_queue(context: dg.AssetExecutionContext, config: ReviewQueueConfig,
                 mammo: MammoHomeResource, review_db: ReviewDatabaseResource) -> dg.MaterializeResult:
    home = mammo.home()
    queue_config = QueueConfig(u_threshold=config.u_threshold, model_disagreement=config.model_disagreement,
                               include_missing=config.include_missing, max_items=config.max_items or None)
    predictions = Path(config.predictions_path) if config.predictions_path else None
    queue, inputs = build_queue_for_home(home, queue_config, predictions)
    for note in inputs.notes:
        context.log.info(note)
    path = write_queue(queue, queue_path(home))
    metadata = {
        "path": dg.MetadataValue.path(str(path)),
        "dagster/row_count": len(queue),
        "batches": ", ".join(inputs.batches),
        "model_predictions": next((n for n in inputs.notes if "predictions" in n), ""),
        "notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in inputs.notes) or "all inputs present"),
        "per_task": dg.MetadataValue.md(_counts_md("task", queue["task"].value_counts().sort_index())),
        "per_reason": dg.MetadataValue.md(_counts_md(
            "reason", queue["reasons"].str.split(";").explode().value_counts().sort_index())),
        "preview": dg.MetadataValue.md(queue[QUEUE_PREVIEW].head(15).to_markdown(index=False)
                                       if len(queue) else "queue is empty"),
    }
    if config.sync_db:
        result = sync_into_db(_db_url(config.db_url, review_db, home), queue)
        metadata.update(app_added=result.added, app_updated=result.updated,
                        app_no_longer_flagged=result.deactivated)
    return dg.MaterializeResult(metadata=metadata)


class AdjudicationsConfig(dg.Config):
    db_url: str = ""
    """Review app database for this run only; empty means the ``review_db`` resource ($MAMMO_REVIEW_DB or
    $MAMMO_HOME/review/review.db)."""


@dg.asset(
    group_name="review", kinds={"parquet"},
    check_specs=[dg.AssetCheckSpec("decisions_well_formed", asset="adjudications", blocking=True,
                                   description="every decision is in the vocabulary, every label a class of "
                                               "its task, every decision_id unique")],
    description="Every annotator decision (append-only audit trail, skips included): "
                "labels/adjudications.parquet. The label assets apply the latest non-skip decision per "
                "(target, task).",
)
def adjudications(context: dg.AssetExecutionContext, config: AdjudicationsConfig, mammo: MammoHomeResource,
                  review_db: ReviewDatabaseResource):
    home = mammo.home()
    path = adjudications_path(home)
    frame = export_adjudications(_db_url(config.db_url, review_db, home), path)
    in_force = effective_decisions(frame)
    yield dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(path)),
        "dagster/row_count": len(frame),
        "in_force": len(in_force),
        "per_decision": dg.MetadataValue.md(_counts_md("decision", frame["decision"].value_counts().sort_index())),
        "per_annotator": dg.MetadataValue.md(_counts_md("annotator",
                                                        frame["annotator"].value_counts().sort_index())),
    })
    problems = adjudication_problems(frame)
    yield dg.AssetCheckResult(check_name="decisions_well_formed", passed=not problems,
                              metadata={"problems": dg.MetadataValue.md(
                                  "\n".join(f"- {p}" for p in problems[:50]) or "none")})


def adjudication_problems(frame: pd.DataFrame) -> list[str]:
    problems = []
    bad_kind = frame[~frame["decision"].isin(list(DECISIONS))]
    problems += [f"decision {r.decision_id}: unknown decision {r.decision!r}" for r in bad_kind.itertuples()]
    dupes = frame[frame["decision_id"].duplicated()]
    problems += [f"decision_id {d} appears twice" for d in dupes["decision_id"]]
    known = set(frame["decision_id"])
    for r in frame.itertuples():
        if r.task not in TASKS:
            problems.append(f"decision {r.decision_id}: unknown task {r.task!r}")
        elif r.decision in ("confirm", "correct"):
            if r.label not in [str(c) for c in TASKS[r.task]]:
                problems.append(f"decision {r.decision_id}: label {r.label!r} is not a {r.task} class")
        elif r.decision == "undo":
            if not isinstance(getattr(r, "reverts", None), str) or r.reverts not in known:
                problems.append(f"decision {r.decision_id}: undo names no earlier decision")
        elif r.label is not None and not pd.isna(r.label):
            problems.append(f"decision {r.decision_id}: {r.decision} must not carry a label")
    return problems


# named jobs, so the sensor's runs read "export_adjudications" in the UI, not "__anonymous_asset_job_..."
export_adjudications_job = dg.define_asset_job("export_adjudications", selection=["adjudications"])
relabel_after_review_job = dg.define_asset_job("relabel_after_review", selection=["image_labels"])


@dg.sensor(
    name="review_decisions_sensor", minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    jobs=[export_adjudications_job, relabel_after_review_job],
    description="New review decisions -> adjudications; new adjudications -> image_labels of every batch.",
)
def review_decisions_sensor(context: dg.SensorEvaluationContext, mammo: MammoHomeResource,
                            review_db: ReviewDatabaseResource):
    home = mammo.home()
    db_url = review_db.url_for(home)
    cursor = json.loads(context.cursor) if context.cursor else {}
    requests: list[dg.RunRequest] = []
    if db_url.startswith("sqlite") and not home.review_db.is_file() and db_url == default_db_url(home):
        return dg.SkipReason(f"no review database at {home.review_db} yet")

    _, top = decision_count(db_url)
    if top > cursor.get("decisions", 0):
        requests.append(dg.RunRequest(run_key=f"adjudications-{top}", job_name=export_adjudications_job.name,
                                      asset_selection=[dg.AssetKey("adjudications")]))
        cursor["decisions"] = top

    latest = context.instance.fetch_materializations(dg.AssetKey("adjudications"), limit=1).records
    if latest:
        storage_id = latest[0].storage_id
        seen = cursor.get("adjudications")
        cursor["adjudications"] = storage_id
        # the first tick only takes a baseline: re-labelling every batch on sensor start is waste
        if seen is not None and storage_id > seen and _has_asset(context, "image_labels"):
            for batch in sorted(context.instance.get_dynamic_partitions("batch")):
                requests.append(dg.RunRequest(run_key=f"image_labels-{batch}-{storage_id}",
                                              job_name=relabel_after_review_job.name, asset_selection=[dg.AssetKey("image_labels")], partition_key=batch))
    else:
        cursor["adjudications"] = 0  # baseline "none yet": the first materialisation will count as new
    if not requests:
        return dg.SensorResult(skip_reason="no new decisions", cursor=json.dumps(cursor, sort_keys=True))
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))


def _has_asset(context: dg.SensorEvaluationContext, key: str) -> bool:
    repo = context.repository_def
    return repo is not None and dg.AssetKey(key) in repo.asset_graph.materializable_asset_keys


defs = dg.Definitions(assets=[review_queue, adjudications], sensors=[review_decisions_sensor])
