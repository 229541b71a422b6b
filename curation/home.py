"""The one data root every output lives under: ``$MAMMO_HOME`` (default ``./.mammo``).

Every path a user, a test or an external benchmark relies on is spelled here once, so
the layout in the README and the layout on disk cannot drift apart::

    $MAMMO_HOME/
      cohorts/<batch>/            raw inputs (dicom/**, reports.csv, pathology.csv, labels.csv)
      private/file_keys/<batch>.parquet   file_key -> raw relative path (PHI, never leaves the site)
      dagster/                    DAGSTER_HOME (dagster.yaml, SQLite storage)
      catalog/<batch>/            catalog.parquet, quarantine.parquet
      labels/<batch>/             report_mentions.parquet, breast_labels.parquet, image_labels.parquet,
                                  label_problems.parquet
      labels/                     review_queue.parquet, adjudications.parquet
      cache/                      preprocessed images (content-addressed) + cache/<batch>/index.parquet
      manifests/                  cohort=<c>/split=<s>/part-*.parquet (manifest rows only)
      manifests_meta/             dataset_card.parquet, excluded.parquet (about the manifests)
      models/                     <run_id>/model.keras, saved_model/, history.csv; runs.parquet
      reports/                    evaluation.json, plots/, tables/
      review/                     review.db (annotator app, SQLite)

A *batch* is one folder under ``cohorts/``: ``hmi`` or ``hmi__2027-01``. The part before
``__`` names the cohort (its role: hmi = train/test, inb = external test, vtb = fine-tune).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "MAMMO_HOME"
DEFAULT_HOME = ".mammo"
BATCH_SEPARATOR = "__"


def cohort_of_batch(batch: str) -> str:
    """``hmi__2027-01`` -> ``hmi``; ``inb`` -> ``inb``."""
    if not batch or batch.strip() != batch:
        raise ValueError(f"batch name {batch!r} must be a non-empty folder name without surrounding spaces")
    return batch.split(BATCH_SEPARATOR, 1)[0]


@dataclass(frozen=True)
class MammoHome:
    root: Path

    @classmethod
    def from_env(cls, root: str | os.PathLike | None = None) -> "MammoHome":
        value = root if root is not None else os.environ.get(ENV_VAR, DEFAULT_HOME)
        return cls(Path(value).expanduser().resolve())

    # --- top-level folders -------------------------------------------------------------
    @property
    def cohorts(self) -> Path:
        return self.root / "cohorts"

    @property
    def dagster(self) -> Path:
        return self.root / "dagster"

    @property
    def catalog(self) -> Path:
        return self.root / "catalog"

    @property
    def labels(self) -> Path:
        return self.root / "labels"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def manifests(self) -> Path:
        return self.root / "manifests"

    @property
    def manifests_meta(self) -> Path:
        """Tables *about* the manifests, kept beside them so that
        ``pyarrow.dataset(home.manifests, partitioning="hive")`` reads manifest rows only."""
        return self.root / "manifests_meta"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def review(self) -> Path:
        return self.root / "review"

    def ensure(self) -> "MammoHome":
        for p in (self.cohorts, self.dagster, self.catalog, self.labels, self.cache,
                  self.manifests, self.manifests_meta, self.models, self.reports, self.review):
            p.mkdir(parents=True, exist_ok=True)
        return self

    # --- per-batch locations -----------------------------------------------------------
    def batch_root(self, batch: str) -> Path:
        return self.cohorts / batch

    def batches(self) -> list[str]:
        """Batch folders present under cohorts/, sorted (deterministic partition order)."""
        if not self.cohorts.is_dir():
            return []
        return sorted(p.name for p in self.cohorts.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and (p / "dicom").is_dir())

    def catalog_path(self, batch: str) -> Path:
        return self.catalog / batch / "catalog.parquet"

    def quarantine_path(self, batch: str) -> Path:
        return self.catalog / batch / "quarantine.parquet"

    def labels_dir(self, batch: str) -> Path:
        return self.labels / batch

    def report_mentions_path(self, batch: str) -> Path:
        return self.labels_dir(batch) / "report_mentions.parquet"

    def breast_labels_path(self, batch: str) -> Path:
        return self.labels_dir(batch) / "breast_labels.parquet"

    def image_labels_path(self, batch: str) -> Path:
        return self.labels_dir(batch) / "image_labels.parquet"

    def label_problems_path(self, batch: str) -> Path:
        return self.labels_dir(batch) / "label_problems.parquet"

    def file_keys_path(self, batch: str) -> Path:
        """The private file_key -> raw path lookup (PHI by design, like cohorts/)."""
        return self.root / "private" / "file_keys" / f"{batch}.parquet"

    def cache_index_path(self, batch: str) -> Path:
        return self.cache / batch / "index.parquet"

    def cache_quarantine_path(self, batch: str) -> Path:
        return self.cache / batch / "quarantine.parquet"

    # --- cross-batch tables ------------------------------------------------------------
    @property
    def review_queue_path(self) -> Path:
        return self.labels / "review_queue.parquet"

    @property
    def adjudications_path(self) -> Path:
        return self.labels / "adjudications.parquet"

    @property
    def excluded_path(self) -> Path:
        return self.manifests_meta / "excluded.parquet"

    @property
    def dataset_card_path(self) -> Path:
        return self.manifests_meta / "dataset_card.parquet"

    @property
    def runs_path(self) -> Path:
        return self.models / "runs.parquet"

    @property
    def evaluation_json(self) -> Path:
        return self.reports / "evaluation.json"

    @property
    def review_db(self) -> Path:
        return self.review / "review.db"
