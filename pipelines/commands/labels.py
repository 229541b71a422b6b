"""``mammo-mtl labels`` — mine per-breast labels from a reports CSV, without Dagster.

Standalone on purpose (benchmarks and other sites call it): the output keeps the caller's
``accession_number``. The Dagster assets pseudonymise instead (see assets/labels.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def labels(
    reports: Path = typer.Option(..., "--reports", exists=True, dir_okay=False,
                                 help="reports.csv: accession_number, report_text [, patient_id, study_date, reader_id, reader_level]"),
    out: Path = typer.Option(..., "--out", file_okay=False, help="Output folder for breast_labels.parquet, report_mentions.parquet"),
    pathology: Path | None = typer.Option(None, "--pathology", exists=True, dir_okay=False,
                                          help="pathology.csv: patient_id, laterality, date, result, source"),
    structured: Path | None = typer.Option(None, "--labels", exists=True, dir_okay=False,
                                           help="labels.csv: structured labels merged under the same provenance rules"),
    policy: Path | None = typer.Option(None, "--policy", exists=True, dir_okay=False,
                                       help="Uncertainty policy YAML (default: label_mining/policies/default.yaml)"),
    context_rules: Path | None = typer.Option(None, "--context-rules", exists=True, dir_okay=False,
                                              help="ConText modifier rules YAML (default: label_mining/rules/context_rules.yaml)"),
    n_process: int = typer.Option(1, "--n-process", min=1, help="Parser worker processes"),
    chunk_rows: int = typer.Option(2000, "--chunk-rows", min=1, help="Reports per streamed chunk"),
    quiet: bool = typer.Option(False, "--quiet", help="Print only the JSON summary line"),
) -> None:
    """Mine BI-RADS assessment, density and malignancy labels per breast, with uncertainty u."""
    from label_mining.pipeline import mine_labels

    try:
        summary = mine_labels(reports, out, pathology_csv=pathology, labels_csv=structured, policy_path=policy,
                              context_rules_path=context_rules, n_process=n_process, chunk_rows=chunk_rows)
    except (ValueError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    record = {"reports": summary.n_reports, "breast_rows": summary.n_breast_rows, "mentions": summary.n_mentions,
              "seconds": round(summary.seconds, 3), "reports_per_second": round(summary.reports_per_second, 1),
              "n_process": n_process, "policy_version": summary.policy_version,
              "class_counts": summary.class_counts, "share_u_positive": summary.share_u_positive,
              "report_outcomes": summary.report_outcomes, "problems": summary.problems}
    if not quiet:
        table = Table(title=f"labels ({summary.n_reports} reports, {summary.reports_per_second:,.0f} reports/s)")
        table.add_column("task")
        table.add_column("classes (count)")
        table.add_column("share u>0", justify="right")
        for task, counts in summary.class_counts.items():
            table.add_row(task, ", ".join(f"{k}: {v}" for k, v in counts.items()),
                          f"{summary.share_u_positive.get(task, 0):.1%}")
        console.print(table)
        if summary.problems:
            console.print(f"[yellow]rows not used:[/] {summary.problems} (details in {out / 'label_problems.parquet'})")
    print(json.dumps(record, sort_keys=True))


def register(app: typer.Typer) -> None:
    app.command("labels")(labels)
