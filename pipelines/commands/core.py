"""Core commands: ``demo`` (the whole system on synthetic cohorts), ``catalog`` (ingest one folder
without Dagster), ``instance-init`` and ``status``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

# wide enough for the summary tables when output goes to a log file rather than a terminal
console = Console() if Console().is_terminal else Console(width=160)

# Demo sizes: big enough for the metrics to mean something, small enough for 2 CPU cores.
DEMO_COHORTS = {"hmi": 160, "inb": 60, "vtb": 160}


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console)


def catalog(
    batch_dir: Path = typer.Option(..., "--batch-dir", exists=True, file_okay=False,
                                   help="Cohort/batch folder containing dicom/"),
    out: Path = typer.Option(..., "--out", help="Output folder for catalog.parquet and quarantine.parquet"),
    workers: int = typer.Option(1, "--workers", min=1, help="Header-reading processes"),
) -> None:
    """Catalogue one batch folder (pseudonymised) without Dagster; prints throughput."""
    from curation.catalog import (CATALOG_SCHEMA, QUARANTINE_SCHEMA, build_catalog, find_dicom_files,
                                  write_table)
    from curation.file_keys import write_lookup
    from curation.pseudonym import key_from_env

    key, is_demo = key_from_env()
    if is_demo:
        console.print("[yellow]Using the DEMO pseudonymisation key; set MAMMO_PSEUDONYM_KEY for real data.[/]")
    total = len(find_dicom_files(batch_dir))
    start = time.perf_counter()
    with _progress() as bar:
        task = bar.add_task("cataloguing", total=total)
        result = build_catalog(batch_dir, batch_dir.name, key, workers=workers,
                               progress=lambda n: bar.advance(task, n))
    elapsed = time.perf_counter() - start
    write_table(result.catalog, CATALOG_SCHEMA, out / "catalog.parquet")
    write_table(result.quarantine, QUARANTINE_SCHEMA, out / "quarantine.parquet")
    # folder and file names are PHI: tables carry file_key; the raw paths stay in this local lookup
    write_lookup(result.files, out / "private" / "file_keys.parquet")
    console.print(f"{result.files_found} files: {len(result.catalog)} catalogued, {len(result.quarantine)} "
                  f"quarantined in {elapsed:.2f}s ({result.files_found / max(elapsed, 1e-9):.0f} files/s)")
    for code, n in sorted(result.reasons.items()):
        console.print(f"  quarantine {code}: {n}")


def instance_init(
    postgres_url: str = typer.Option(None, "--postgres-url", help="Run/event/schedule storage on PostgreSQL "
                                     "(postgresql://user:pass@host:5432/db); or set $MAMMO_DAGSTER_PG_URL"),
) -> None:
    """Create the persistent Dagster instance under $MAMMO_HOME/dagster (idempotent)."""
    from curation.home import MammoHome
    from pipelines.instance import InstanceConfigError, ensure_instance, storage_kind

    try:
        path = ensure_instance(MammoHome.from_env().ensure(), postgres_url=postgres_url)
    except InstanceConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--postgres-url") from None
    console.print(f"DAGSTER_HOME={path} (storage: {storage_kind(path)})")


def demo(
    height: int = typer.Option(512, "--height", help="Stored DICOM height of the synthetic images"),
    seed: int = typer.Option(0, "--seed"),
    hmi: int = typer.Option(DEMO_COHORTS["hmi"], "--hmi", help="hmi patients"),
    inb: int = typer.Option(DEMO_COHORTS["inb"], "--inb", help="inb patients"),
    vtb: int = typer.Option(DEMO_COHORTS["vtb"], "--vtb", help="vtb patients"),
    skip_downstream: bool = typer.Option(False, "--skip-downstream",
                                         help="Only the per-batch assets (no manifests/training)"),
) -> None:
    """Generate the demo cohorts, then materialise every asset with the persistent instance."""
    from curation.home import MammoHome
    from pipelines.demo import run_demo

    home = MammoHome.from_env().ensure()
    ok = run_demo(home, {"hmi": hmi, "inb": inb, "vtb": vtb}, height=height, seed=seed,
                  downstream=not skip_downstream, console=console)
    if not ok:
        raise typer.Exit(code=1)


def status() -> None:
    """What is under $MAMMO_HOME: batches, catalogue and quarantine counts, manifests, models."""
    from pipelines.demo import print_summary
    from curation.home import MammoHome

    print_summary(MammoHome.from_env(), console)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("catalog")(catalog)
    app.command("instance-init")(instance_init)
    app.command("status")(status)
    app.command("phi-audit")(phi_audit)


def phi_audit(
    home: Path = typer.Option(None, "--home", help="Data root to audit (default $MAMMO_HOME)"),
) -> None:
    """Search every output under $MAMMO_HOME for identifying values found in the raw inputs."""
    from curation.home import MammoHome
    from curation.phi_audit import audit

    root = MammoHome.from_env(home).root
    hits, scanned, n_values = audit(root)
    console.print(f"searched {scanned} output files for {n_values} identifying values from {root / 'cohorts'}")
    for hit in hits:
        console.print(f"[red]LEAK[/] {hit.kind} ({hit.masked}) in {hit.file}")
    if hits:
        raise typer.Exit(code=1)
    console.print("[green]no identifying value found in any output[/]")
