"""Process a list of DICOM files into the cache with N worker processes.

Every input ends as exactly one index row or one quarantine row (reason-coded), in input order,
so the same inputs give byte-identical index files whatever the worker count. Cached entries
(same sha256 + config hash) are reused without decoding.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import traceback
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from curation.decode import DecodeError, read_dicom
from curation.preprocess import cache as C
from curation.preprocess.config import PreprocessConfig
from curation.preprocess.steps import preprocess


@dataclass(frozen=True)
class WorkItem:
    path: str                    # absolute path of the DICOM file
    source_path: str             # the path recorded in the index (relative to the input folder)
    image_key: str | None = None
    sha256: str | None = None    # from the catalogue when known; hashed here otherwise
    laterality: str | None = None  # resolved laterality from the catalogue, overrides the header


@dataclass
class RunResult:
    index: pd.DataFrame
    quarantine: pd.DataFrame
    processed: int = 0           # decoded and written now
    reused: int = 0              # served from the cache
    reasons: dict[str, int] = field(default_factory=dict)


def _process_one(item: WorkItem, root: str, config: PreprocessConfig, batch: str | None) -> tuple[str, dict]:
    """("ok"|"cached", index row) or ("quarantine", quarantine row). Never raises."""
    base = {"batch": batch, "image_key": item.image_key, "path": item.source_path, "stage": "preprocess",
            "sha256": item.sha256}
    try:
        sha = item.sha256 or C.sha256_file(item.path)
        base["sha256"] = sha
        rel = C.cache_relpath(sha, config.config_hash)
        key = item.image_key or f"sha256:{sha[:16]}"
        hit = C.read_entry(Path(root), rel)
        if hit is not None:
            return "cached", {**hit, "image_key": key, "source_path": item.source_path}
        img = read_dicom(item.path)
        res = preprocess(img, config, laterality=item.laterality)
        row = {
            "image_key": key, "source_path": item.source_path, "cache_path": rel,
            "height": res.image16.shape[0], "width": res.image16.shape[1], "content_width": res.content_width,
            "crop_x0": res.crop[0], "crop_y0": res.crop[1], "crop_x1": res.crop[2], "crop_y1": res.crop[3],
            "flipped": res.flipped, "orientation_disagreement": res.orientation_disagreement,
            "laterality_tag": res.laterality_tag, "laterality_pixels": res.laterality_pixels,
            "voi_source": res.voi_source, "background_level": round(res.background_level, 6),
            "breast_fraction": round(res.breast_fraction, 6), "n_objects": res.n_objects,
            "config_hash": config.config_hash, "sha256": sha,
        }
        C.write_entry(Path(root), rel, res.image16, row, config.png_compression)
        return "ok", row
    except DecodeError as exc:
        return "quarantine", {**base, "reason_code": exc.reason_code, "message": exc.message[:500]}
    except FileNotFoundError:
        return "quarantine", {**base, "reason_code": "missing_file", "message": "file not found"}
    except Exception as exc:  # a bug or an unforeseen file: quarantined with its type, never dropped
        last = traceback.extract_tb(exc.__traceback__)[-1]
        return "quarantine", {**base, "reason_code": "internal_error",
                              "message": f"{type(exc).__name__}: {exc} at {Path(last.filename).name}:{last.lineno}"[:500]}


def _star(args):
    return _process_one(*args)


def run(items: list[WorkItem], root: str | os.PathLike, config: PreprocessConfig, *, workers: int = 1,
        batch: str | None = None, progress: bool = False) -> RunResult:
    """Process ``items`` (sorted by source_path here, for determinism) into the cache at ``root``."""
    if workers < 1:
        raise ValueError(f"workers={workers} must be >= 1")
    root = str(Path(root).resolve())
    Path(root).mkdir(parents=True, exist_ok=True)
    items = sorted(items, key=lambda i: i.source_path)
    args = [(it, root, config, batch) for it in items]

    bar = None
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("preprocess"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        bar.start()
        task = bar.add_task("images", total=len(args))

    outcomes: list[tuple[str, dict]] = []
    try:
        if workers == 1 or len(args) <= 1:
            for a in args:
                outcomes.append(_star(a))
                if bar:
                    bar.advance(task)
        else:
            # spawn: no forked copies of a parent's threads/locks (Dagster, TF) in the workers
            ctx = mp.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(workers, len(args)), mp_context=ctx) as pool:
                for out in pool.map(_star, args, chunksize=1):
                    outcomes.append(out)
                    if bar:
                        bar.advance(task)
    finally:
        if bar:
            bar.stop()

    index_rows = [row for kind, row in outcomes if kind in ("ok", "cached")]
    quarantine_rows = [row for kind, row in outcomes if kind == "quarantine"]
    counts = Counter(kind for kind, _ in outcomes)
    reasons = dict(sorted(Counter(r["reason_code"] for r in quarantine_rows).items()))
    return RunResult(index=C.index_frame(index_rows), quarantine=C.quarantine_frame(quarantine_rows),
                     processed=counts["ok"], reused=counts["cached"], reasons=reasons)


def items_from_folder(dicom_dir: str | os.PathLike) -> list[WorkItem]:
    """Every file under ``dicom_dir`` (any nesting; DICOM files often have no extension), skipping
    hidden files. Non-DICOM files are not skipped: they reach quarantine as ``not_dicom``."""
    base = Path(dicom_dir).resolve()
    if not base.is_dir():
        raise FileNotFoundError(f"--dicom-dir {dicom_dir} is not a folder")
    found = []
    for p in sorted(base.rglob("*")):
        rel = p.relative_to(base)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            found.append(WorkItem(path=str(p), source_path=rel.as_posix()))
    return found
