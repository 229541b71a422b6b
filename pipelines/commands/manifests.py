"""``mammo-mtl manifests build|validate|card``: the split manifests without Dagster.

``build`` reads every batch under $MAMMO_HOME (catalogue, image labels, cache index), splits
and writes ``manifests/cohort=<c>/split=<s>/part-0.parquet``; ``validate`` runs the GX suites
and the invariants the blocking asset checks run, and exits 1 when any fails; ``card`` prints
the dataset card (the paper's Table 1 for our data).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console()
manifests_app = typer.Typer(help="Split manifests: build, validate, dataset card.", no_args_is_help=True)


@manifests_app.command("build")
def build(
    train: float = typer.Option(0.8, help="fraction of patients (or breasts) in train"),
    val: float = typer.Option(0.0, help="fraction in val (0 = no validation split)"),
    test: float = typer.Option(0.2, help="fraction in test"),
    seed: int = typer.Option(0, help="same inputs + seed -> byte-identical manifests"),
    group_by: str = typer.Option("patient", help="'patient' (leak-free) or 'breast' (the paper's protocol)"),
    stratify_density: bool = typer.Option(True, "--stratify-density/--no-stratify-density"),
    role: list[str] = typer.Option([], "--role", help="cohort=split|test|finetune, repeatable (default "
                                                      "hmi=split inb=test vtb=finetune)"),
) -> None:
    """Split every catalogued cohort and write the Parquet manifests + excluded.parquet + dataset card."""
    from curation import manifests as mf
    from curation.home import MammoHome
    from curation.split import SplitConfig

    try:
        config = SplitConfig(train=train, val=val, test=test, seed=seed, group_by=group_by,
                             stratify_density=stratify_density)
        roles = dict(_parse_role(r) for r in role)
        home = MammoHome.from_env().ensure()
        rows, excluded = mf.build_all(home, config, roles)
        mf.write_dataset_card(home)
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    counts = rows.groupby(["cohort", "split"]).agg(images=("image_key", "size"), patients=("patient_pid", "nunique"))
    console.print(counts.to_string())
    console.print(f"{len(rows)} images in manifests under {home.manifests}; {len(excluded)} excluded "
                  f"({dict(excluded['reason'].value_counts().sort_index())})")


def _parse_role(text: str) -> tuple[str, str]:
    cohort, sep, role = text.partition("=")
    if not sep or not cohort or not role:
        raise ValueError(f"--role {text!r} must look like cohort=split|test|finetune")
    return cohort, role


@manifests_app.command("validate")
def validate_cmd(
    suite: str = typer.Option("all", help="catalog, labels, manifest or all"),
) -> None:
    """Run the GX suites and the invariants on $MAMMO_HOME; exit 1 if any fails."""
    import pandas as pd

    from curation import manifests as mf
    from curation.home import MammoHome
    from curation.validation import validate
    from curation.validation.invariants import patient_leaks, placement_errors, reconcile

    home = MammoHome.from_env()
    loaders = {"catalog": mf.load_catalog, "labels": mf.load_image_labels, "manifest": mf.read_manifest}
    names = list(loaders) if suite == "all" else [suite]
    if any(n not in loaders for n in names):
        console.print(f"[red]--suite {suite!r} must be one of {[*loaders, 'all']}[/]")
        raise typer.Exit(2)
    ok = True
    for name in names:
        frame = loaders[name](home)
        if frame.empty:
            console.print(f"[red]{name}: no rows under {home.root}[/]")
            ok = False
            continue
        report = validate(frame, name)
        ok &= report.success
        console.print(("[green]" if report.success else "[red]") + report.summary() + "[/]")
        if not report.success:
            console.print(report.failures_markdown(), markup=False)
    if suite in ("all", "manifest"):
        rows, catalog = mf.read_manifest(home), mf.load_catalog(home)
        excluded_file = mf.excluded_path(home)
        excluded = pd.read_parquet(excluded_file) if excluded_file.is_file() else pd.DataFrame(
            columns=mf.EXCLUDED_SCHEMA.names)
        group_by = mf.read_split_metadata(home).get("mammo_mtl.split.group_by", "patient")
        leaks, _ = patient_leaks(rows, group_by)
        placement = placement_errors(rows, catalog, mf.load_image_labels(home), mf.load_cache_index(home), excluded)
        _, unreconciled = reconcile(rows, excluded, catalog)
        for name, problems in (("no_patient_leak", leaks), ("every_image_once", placement),
                               ("counts_reconcile", unreconciled)):
            ok &= problems.empty
            console.print(f"[{'green' if problems.empty else 'red'}]{name}: {len(problems)} problem(s)[/]")
            if len(problems):
                console.print(problems.head(10).to_string(index=False), markup=False)
    raise typer.Exit(0 if ok else 1)


@manifests_app.command("card")
def card() -> None:
    """Print the dataset card of the manifests on disk (markdown)."""
    from curation import manifests as mf
    from curation.home import MammoHome

    typer.echo(mf.card_markdown(mf.dataset_card(mf.read_manifest(MammoHome.from_env()))))


@manifests_app.command("suites")
def suites(out: Path = typer.Option(None, "--out", help="write <suite>.json here (default: print)")) -> None:
    """Show the versioned GX suites (expectations as JSON, version, fingerprint)."""
    import json

    from curation.validation.suites import SUITES, suite_fingerprint, suite_spec

    for name in SUITES:
        spec = {**suite_spec(name), "fingerprint": suite_fingerprint(name)}
        text = json.dumps(spec, indent=1, sort_keys=True, default=str)
        if out is None:
            typer.echo(text)
        else:
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{name}.json").write_text(text + "\n", encoding="utf-8")
            typer.echo(f"{name}: v{spec['suite_version']} ({len(spec['expectations'])} expectations, "
                       f"fingerprint {spec['fingerprint']}) -> {out / (name + '.json')}")


def register(app: typer.Typer) -> None:
    app.add_typer(manifests_app, name="manifests")
