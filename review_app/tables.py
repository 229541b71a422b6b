"""Reading the pipeline's tables for the queue, writing the queue and the adjudications.

Shared by the Dagster assets and the CLI so both produce the same files. Missing optional
inputs (no catalogue, no preprocessing yet, no model) narrow what the queue can say; they
never stop it — each is reported in :class:`QueueInputs.notes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from curation.home import MammoHome
from curation.parquet_io import write_arrow
from review_app.export import decisions_frame, write_adjudications
from review_app.queue import QueueConfig, build_queue, to_arrow
from review_app.storage import init_db, make_engine
from review_app.sync import SyncResult, sync_queue

QUEUE_FILE = "review_queue.parquet"
ADJUDICATIONS_FILE = "adjudications.parquet"


@dataclass
class QueueInputs:
    breast_labels: pd.DataFrame
    image_labels: pd.DataFrame
    catalog: pd.DataFrame | None
    index: pd.DataFrame | None
    mentions: pd.DataFrame | None
    predictions: pd.DataFrame | None
    adjudications: pd.DataFrame | None
    batches: list[str]
    notes: list[str] = field(default_factory=list)


def queue_path(home: MammoHome) -> Path:
    return home.review_queue_path


def adjudications_path(home: MammoHome) -> Path:
    return home.adjudications_path


def label_batches(home: MammoHome) -> list[str]:
    if not home.labels.is_dir():
        return []
    return sorted(p.name for p in home.labels.iterdir()
                  if p.is_dir() and ((p / "breast_labels.parquet").is_file() or (p / "image_labels.parquet").is_file()))


def _read_all(paths: dict[str, Path]) -> pd.DataFrame | None:
    frames = []
    for batch, path in paths.items():
        if path.is_file():
            frame = pd.read_parquet(path)
            frame["batch"] = batch
            frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else None


def latest_predictions(home: MammoHome) -> tuple[Path, pd.DataFrame] | None:
    """The predictions of the run that wrote predictions last: ``models/<run>/predictions/*.parquet``
    (one file per test set, written by the evaluation), concatenated; ``None`` when there are none."""
    files = sorted(home.models.glob("*/predictions/*.parquet")) if home.models.is_dir() else []
    if not files:
        return None
    newest = max(files, key=lambda f: (f.stat().st_mtime_ns, str(f)))
    run_dir = newest.parent.parent
    frames = [pd.read_parquet(f) for f in sorted(run_dir.glob("predictions/*.parquet"))]
    frames = [f for f in frames if "image_key" in f.columns]
    if not frames:
        return None
    return run_dir, pd.concat(frames, ignore_index=True).drop_duplicates("image_key", keep="last")


def load_queue_inputs(home: MammoHome, predictions_path: Path | None = None) -> QueueInputs:
    batches = label_batches(home)
    notes: list[str] = []
    if not batches:
        raise FileNotFoundError(f"no labels/<batch>/breast_labels.parquet or image_labels.parquet under {home.labels}: "
                                "materialise the label assets (or run `mammo-mtl demo`) first")
    breast = _read_all({b: home.breast_labels_path(b) for b in batches})
    image = _read_all({b: home.image_labels_path(b) for b in batches})
    if breast is None:
        notes.append("no breast_labels: breast-level tasks are not reviewed")
        breast = pd.DataFrame(columns=["breast_key", "accession_key", "task", "label", "u", "source", "rule_id",
                                       "evidence", "conflict", "batch"])
    if image is None:
        notes.append("no image_labels: view labels are not reviewed")
        image = pd.DataFrame(columns=["image_key", "breast_key", "task", "label", "u", "source", "rule_id",
                                      "evidence", "conflict", "batch"])
    catalog = _read_all({b: home.catalog_path(b) for b in batches})
    if catalog is None:
        notes.append("no catalogue: images are found through image_labels only (no view/laterality captions)")
    index = _read_all({b: home.cache_index_path(b) for b in batches})
    if index is None:
        notes.append("no preprocessing index: items show no image and no orientation check")
    mentions = _read_all({b: home.report_mentions_path(b) for b in batches})
    predictions = None
    if predictions_path is not None:
        if not Path(predictions_path).is_file():
            raise FileNotFoundError(f"predictions file {predictions_path} does not exist")
        predictions = pd.read_parquet(predictions_path)
        notes.append(f"model predictions: {Path(predictions_path).name} ({len(predictions)} rows)")
    else:
        found = latest_predictions(home)
        if found is None:
            notes.append(f"no model predictions under {home.models.name}/<run>/predictions/ (the evaluation writes "
                         "them): model-disagreement reason off")
        else:
            run_dir, predictions = found
            notes.append(f"model predictions: latest run {run_dir.name} ({len(predictions)} rows, "
                         "model-disagreement reason on)")
    adjudications = pd.read_parquet(adjudications_path(home)) if adjudications_path(home).is_file() else None
    return QueueInputs(breast, image, catalog, index, mentions, predictions, adjudications, batches, notes)


def build_queue_for_home(home: MammoHome, config: QueueConfig = QueueConfig(),
                         predictions_path: Path | None = None) -> tuple[pd.DataFrame, QueueInputs]:
    inputs = load_queue_inputs(home, predictions_path)
    queue = build_queue(inputs.breast_labels, inputs.image_labels, catalog=inputs.catalog, index=inputs.index,
                        predictions=inputs.predictions, mentions=inputs.mentions,
                        adjudications=inputs.adjudications, config=config)
    return queue, inputs


def write_queue(queue: pd.DataFrame, path: Path) -> Path:
    return write_arrow(to_arrow(queue), path)


def read_queue(path: Path) -> pd.DataFrame:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} does not exist: build it with `mammo-mtl review sync-queue` "
                                "or materialise the review_queue asset")
    return pd.read_parquet(path)


def sync_into_db(db_url: str, queue: pd.DataFrame) -> SyncResult:
    engine = make_engine(db_url)
    try:
        factory = init_db(engine)
        with factory() as session:
            result = sync_queue(session, queue)
            session.commit()
        return result
    finally:
        engine.dispose()


def export_adjudications(db_url: str, path: Path) -> pd.DataFrame:
    engine = make_engine(db_url)
    try:
        factory = init_db(engine)
        with factory() as session:
            frame = decisions_frame(session)
        write_adjudications(frame, path)
        return frame
    finally:
        engine.dispose()


def decision_count(db_url: str) -> tuple[int, int]:
    """(number of decisions, highest decision id) — the sensor's cheap cursor."""
    from sqlalchemy import func, select

    from review_app.storage import Decision
    engine = make_engine(db_url)
    try:
        factory = init_db(engine)
        with factory() as session:
            n, top = session.execute(select(func.count(Decision.id), func.max(Decision.id))).one()
        return int(n), int(top or 0)
    finally:
        engine.dispose()
