"""``mammo-mtl import FORMAT SRC --out COHORT_DIR`` — a public dataset as a cohort folder.

FORMAT is one of cbis-ddsm, vindr-mammo, inbreast, cdd-cesm, mini-mias, embed (docs/datasets.md).
The summary says what was imported and what was skipped and why; it is also written to
``COHORT_DIR/import_summary.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

console = Console()


def import_dataset(
    fmt: str = typer.Argument(..., metavar="FORMAT",
                              help="cbis-ddsm | vindr-mammo | inbreast | cdd-cesm | mini-mias | embed"),
    src: Path = typer.Argument(..., exists=True, file_okay=False, help="The dataset's download folder"),
    out: Path = typer.Option(..., "--out", file_okay=False,
                             help="Cohort folder to write, e.g. $MAMMO_HOME/cohorts/inb (dicom/, labels.csv, ...)"),
) -> None:
    """Convert a public dataset into a cohort folder (DICOM MG + labels.csv [+ pathology.csv, reports.csv])."""
    from curation.importers import FORMATS, importers
    from curation.importers.common import ImportError_

    key = fmt.strip().lower()
    if key not in FORMATS:
        console.print(f"[red]FORMAT {fmt!r} is not one of {', '.join(FORMATS)}[/]")
        raise typer.Exit(2)
    if (out / "dicom").is_dir() and any((out / "dicom").iterdir()):
        console.print(f"[red]{out}/dicom is not empty: import into a new cohort folder[/]")
        raise typer.Exit(2)
    try:
        summary = importers()[key](src, out)
    except ImportError_ as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print(f"[green]{summary['imported_images']} image(s) imported[/], {summary['breasts_labelled']} breast(s) "
                  f"labelled, {summary['pathology_rows']} pathology row(s), {summary['reports']} report(s) -> {out}")
    if summary["skipped"]:
        console.print(f"[yellow]{summary['skipped']} item(s) skipped:[/] "
                      + ", ".join(f"{k} x{v}" for k, v in summary["skipped_by_reason"].items()))
    for note in summary["notes"]:
        console.print(f"note: {note}")
    console.print(json.dumps({k: summary[k] for k in ("format", "imported_images", "skipped", "skipped_by_reason")}))


def register(app: typer.Typer) -> None:
    app.command("import")(import_dataset)
