"""``mammo-mtl demo-data``: write one synthetic cohort folder (deterministic).

External benchmarks call this interface; keep its options stable:
``--cohort {hmi,inb,vtb} --patients N --seed S --out DIR [--height H]``.
"""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console()


class Cohort(str, Enum):
    hmi = "hmi"
    inb = "inb"
    vtb = "vtb"


def demo_data(
    cohort: Cohort = typer.Option(..., "--cohort", help="hmi (multi-vendor, balanced), inb (one vendor, 25% "
                                  "malignant, external test) or vtb (mostly benign, labels often absent)"),
    patients: int = typer.Option(50, "--patients", min=1, max=100_000, help="Patients (one exam each)"),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed; same arguments give byte-identical files"),
    out: Path = typer.Option(..., "--out", file_okay=False, help="Cohort folder to write (dicom/, reports.csv, "
                             "pathology.csv, truth.parquet); a folder this generator wrote earlier is replaced"),
    height: int = typer.Option(512, "--height", min=64, max=4096, help="Stored image height in pixels "
                               "(width ≈ 0.77 × height; 3328 = full field)"),
    defects: bool = typer.Option(True, "--defects/--no-defects", help="Plant ~1.5% bad files (truncated, not "
                                 "DICOM, CT, no pixels, duplicate SOP, unknown laterality)"),
) -> None:
    """Generate a synthetic demo cohort (DICOM + reports + pathology + truth). Synthetic data: never a clinical claim."""
    from curation.demo_cohort import generate_cohort

    start = time.perf_counter()
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as bar:
            task = bar.add_task(f"{cohort.value}: patients", total=patients)
            summary = generate_cohort(cohort.value, patients, seed, out, height=height, defects=defects,
                                      progress=lambda done, total: bar.update(task, completed=done))
    except (ValueError, FileExistsError) as exc:
        console.print(f"[red]demo-data: {exc}[/]")
        raise typer.Exit(code=2) from exc
    elapsed = time.perf_counter() - start
    console.print(
        f"{summary.cohort}: {summary.patients} patients, {summary.images} images "
        f"({summary.malignant_images} malignant), {summary.reports} reports, {summary.pathology_rows} pathology rows "
        f"-> {out} in {elapsed:.1f}s ({summary.images / max(elapsed, 1e-9):.1f} images/s)")
    console.print("vendors: " + ", ".join(f"{k}={v}" for k, v in summary.vendors.items()))
    if summary.defects:
        console.print("planted defects: " + ", ".join(f"{k}={v}" for k, v in summary.defects.items()))


def register(app: typer.Typer) -> None:
    app.command("demo-data")(demo_data)
