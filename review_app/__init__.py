"""Annotator review app: a queue of flagged labels, decisions fed back as confirmed labels.

Domain code only (no Dagster import): :mod:`review_app.queue` builds the queue from label
tables, :mod:`review_app.storage` keeps queue items and append-only decisions in SQLAlchemy,
:mod:`review_app.web` serves the FastAPI app, :mod:`review_app.export` writes
``labels/adjudications.parquet``.
"""

from importlib import metadata as _metadata

try:
    APP_VERSION = _metadata.version("mammo-mtl")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    APP_VERSION = "0.0.0+source"

__all__ = ["APP_VERSION"]
