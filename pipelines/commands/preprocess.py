"""``mammo-mtl preprocess``: a DICOM folder -> the content-addressed cache, index.parquet, quarantine.parquet.

Benchmarks outside the tests call this interface; keep it stable:
``mammo-mtl preprocess --dicom-dir DIR --out OUT --height H [--workers N]``.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)


def preprocess(
    dicom_dir: Path = typer.Option(..., "--dicom-dir", exists=True, file_okay=False,
                                   help="Folder of DICOM files (any nesting)"),
    out: Path = typer.Option(..., "--out", help="Cache root; index.parquet and quarantine.parquet go here"),
    height: int = typer.Option(2048, "--height", min=32, help="Output height H (the paper uses 2048)"),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar"),
) -> None:
    """Decode, flip, clean, crop, resize and pad every image under DIR (paper section 3.2); cached by content."""
    from curation.preprocess import cache as C
    from curation.preprocess.config import PreprocessConfig
    from curation.file_keys import write_lookup
    from curation.preprocess.runner import items_from_folder, run
    from curation.pseudonym import key_from_env

    config = PreprocessConfig(height=height)
    items = items_from_folder(dicom_dir, key_from_env()[0])
    start = time.perf_counter()
    result = run(items, out, config, workers=workers, progress=progress)
    elapsed = time.perf_counter() - start
    C.write_parquet(result.index, out / "index.parquet", C.INDEX_SCHEMA)
    C.write_parquet(result.quarantine, out / "quarantine.parquet", C.QUARANTINE_SCHEMA)
    # rows carry file_key only (folder names are PHI); the raw paths stay in this local lookup
    write_lookup(result.files, out / "private" / "file_keys.parquet")
    console.print(f"{len(items)} files: {result.processed} processed, {result.reused} from cache, "
                  f"{len(result.quarantine)} quarantined in {elapsed:.2f}s "
                  f"(config {config.config_hash}, H={height}, {workers} worker(s))")
    for code, n in result.reasons.items():
        console.print(f"  quarantine {code}: {n}")
    flagged = int(result.index["orientation_disagreement"].sum()) if len(result.index) else 0
    if flagged:
        console.print(f"  laterality tag disagrees with the pixels for {flagged} image(s): see "
                      "laterality_tag / laterality_pixels in index.parquet")


def register(app: typer.Typer) -> None:
    app.command("preprocess")(preprocess)
