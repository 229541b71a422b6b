"""One ingest batch -> cached images + ``cache/<batch>/index.parquet`` + ``quarantine.parquet``.

Reads the batch's catalogue (pseudonymised keys, resolved laterality, sha256 already computed
by ingest, so a re-run hashes nothing) and writes the per-batch tables and a contact sheet.
Used by the ``preprocessed_images`` asset; free of Dagster.
"""

from __future__ import annotations

import os
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from curation.file_keys import lookup_path, read_lookup
from curation.home import MammoHome
from curation.preprocess import cache as C
from curation.preprocess.config import PreprocessConfig
from curation.preprocess.contact_sheet import render
from curation.preprocess.runner import WorkItem, run

CATALOG_COLUMNS = ("image_key", "file_key", "sha256", "laterality")


@dataclass(frozen=True)
class BatchSummary:
    catalogued: int
    indexed: int
    processed: int
    reused: int
    quarantined: int
    reasons: dict[str, int]
    flipped: int
    orientation_disagreements: int
    labels_removed: int            # images where more than one object was found and only the breast kept
    index_path: Path
    quarantine_path: Path
    contact_sheet: Path | None
    preview: pd.DataFrame


def items_from_catalog(catalog: pd.DataFrame, batch_root: Path, paths: dict[str, bytes]) -> list[WorkItem]:
    """``paths``: the private lookup (file_key -> relative path bytes) written by ingest."""
    missing = [c for c in CATALOG_COLUMNS if c not in catalog.columns]
    if missing:
        raise ValueError(f"catalogue lacks column(s) {missing}; expected those of curation.schemas.CATALOG_SCHEMA")
    base = os.fsencode(str(batch_root))
    unknown = sorted(set(catalog["file_key"]) - set(paths))
    if unknown:
        raise ValueError(f"{len(unknown)} catalogued file key(s) are not in the private file lookup "
                         f"(e.g. {unknown[0]}): re-materialise dicom_catalog for this batch")
    return [WorkItem(path=os.fsdecode(os.path.join(base, paths[r.file_key])), file_key=r.file_key,
                     image_key=r.image_key, sha256=r.sha256 or None,
                     laterality=r.laterality if r.laterality in ("L", "R") else None)
            for r in catalog.itertuples(index=False)]


def preprocess_batch(home: MammoHome, batch: str, config: PreprocessConfig, *, workers: int = 1,
                     sheet_examples: int = 4, executor: Executor | None = None) -> BatchSummary:
    """``executor``: see :func:`curation.preprocess.runner.run` (default: a local pool of ``workers``)."""
    catalog_path = home.catalog_path(batch)
    if not catalog_path.is_file():
        raise FileNotFoundError(f"{catalog_path} does not exist: materialise dicom_catalog for batch {batch!r} first")
    catalog = pd.read_parquet(catalog_path)
    lookup = lookup_path(home.root, batch)
    if not lookup.is_file():
        raise FileNotFoundError(f"{lookup} does not exist: materialise dicom_catalog for batch {batch!r} first")
    paths = read_lookup(lookup)
    items = items_from_catalog(catalog, home.batch_root(batch), paths)
    result = run(items, home.cache, config, workers=workers, batch=batch, executor=executor)

    index_path, quarantine_path = home.cache_index_path(batch), home.cache_quarantine_path(batch)
    C.write_parquet(result.index, index_path, C.INDEX_SCHEMA)
    C.write_parquet(result.quarantine, quarantine_path, C.QUARANTINE_SCHEMA)

    sheet = None
    if len(result.index) and sheet_examples > 0:
        # deterministic examples: flipped and unflipped ones first, disagreements always shown
        idx = result.index
        picks = pd.concat([idx[idx["orientation_disagreement"]].head(sheet_examples),
                           idx[idx["flipped"]].head(max(1, sheet_examples // 2)),
                           idx[~idx["flipped"]].head(max(1, sheet_examples // 2))]).drop_duplicates("image_key")
        base = os.fsencode(str(home.batch_root(batch)))
        pairs = [(os.fsdecode(os.path.join(base, paths[r["file_key"]])), r)
                 for _, r in picks.head(sheet_examples).iterrows()]
        sheet = render(pairs, home.cache, home.cache / batch / "contact_sheet.png", tile_height=160)

    idx = result.index
    preview_cols = ["image_key", "height", "width", "crop_x0", "crop_y0", "crop_x1", "crop_y1", "flipped",
                    "orientation_disagreement", "voi_source"]
    return BatchSummary(
        catalogued=len(catalog), indexed=len(idx), processed=result.processed, reused=result.reused,
        quarantined=len(result.quarantine), reasons=result.reasons, flipped=int(idx["flipped"].sum()),
        orientation_disagreements=int(idx["orientation_disagreement"].sum()),
        labels_removed=int((idx["n_objects"] > 1).sum()), index_path=index_path, quarantine_path=quarantine_path,
        contact_sheet=sheet, preview=idx[preview_cols].head(10))
