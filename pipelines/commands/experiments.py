"""``mammo-mtl experiments`` (the paper's Tables 2–9) and ``mammo-mtl evaluate``.

Both work on ``$MAMMO_HOME`` directly, without a Dagster instance: ``experiments`` trains in this
process (it is a command-line job, not the code server) and shares its model cache with the
assets, so models the demo already trained are reused.
"""

from __future__ import annotations

import os
from typing import List, Optional

import typer
from rich.console import Console

console = Console(stderr=True)
BUDGET_ENV = "MAMMO_EXPERIMENT_BUDGET"


def experiments(
    all_tables: bool = typer.Option(False, "--all", help="All experiments: Tables 2/3, 4, 5, 6/7, 8/9 (with "
                                                         "--budget bench: the bench protocol)"),
    table: Optional[List[str]] = typer.Option(None, "--table", "-t",
                                              help="A paper table (2..9, or 2_3, 6_7, 8_9); repeatable"),
    budget: str = typer.Option(os.environ.get(BUDGET_ENV, "paper"), "--budget",
                               help=f"small (CPU minutes per model), demo (the assets' defaults), bench (the CPU "
                                    f"benchmark protocol: 3 seeds per arm, tests across seeds; see "
                                    f"bench/README_experiments.md) or paper (the paper's protocol, for a GPU); "
                                    f"default ${BUDGET_ENV} or paper"),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1,
                             help="Trainings side by side, each in its own process with cores/N TensorFlow "
                                  "threads (one CPU training keeps about one core busy); 1 trains in this process"),
) -> None:
    """Regenerate the paper's tables on the data under $MAMMO_HOME (reports/tables/table_<n>.md + .parquet)."""
    from curation.home import MammoHome
    from model import experiments as X
    from model.training_job import ModelExecutor, _needed, _val_rows, load_manifests

    bench = budget == "bench"
    if all_tables and table:
        raise typer.BadParameter("give either --all or one or more --table N")
    if not all_tables and not table and not bench:
        raise typer.BadParameter("give either --all or one or more --table N")
    try:
        if table:
            keys = X.resolve_tables(table)
        else:
            keys = list(X.BENCH_PROTOCOL if bench else X.PAPER_TABLES)
        b = X.budget(budget)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    home = MammoHome.from_env().ensure()
    specs = [s for k in keys for s in X.EXPERIMENTS[k].runs]
    manifests = load_manifests(home, _needed(specs, list(X.DATASETS)))
    required = {tuple(s.train_on) for s in specs} | {X.DATASETS["hmi_test"]}
    empty = [f"{c}/{s}" for (c, s), rows in manifests.items() if rows.empty and (c, s) in required]
    if empty:
        console.print(f"[red]no manifest rows for {', '.join(empty)}[/]: run `mammo-mtl demo` or materialise "
                      f"split_manifests first")
        raise typer.Exit(code=1)
    missing = [X.DATASETS[d] for d in X.DATASETS if manifests.get(X.DATASETS[d]) is not None
               and manifests[X.DATASETS[d]].empty]
    if missing and len(missing) < len(X.DATASETS):
        console.print(f"[yellow]no manifest rows for test set(s) {missing}: their columns are left out[/]")
    console.print(f"budget {b.name}: H={b.height} W={b.width}, {b.epochs} epochs, {b.seeds} seed(s), "
                  f"ensembles of {b.ensemble_size}, {b.mc_passes} MC passes")
    executor = ModelExecutor(home.cache, _val_rows(home))
    if jobs > 1:
        from model.experiments import parallel

        threads = parallel.threads_per_training(jobs)
        try:
            parallel.train_in_parallel(parallel.training_order(parallel.planned_evals(keys, b, manifests)),
                                       workers=jobs, threads=threads, models_root=home.models,
                                       manifests=manifests, executor=executor, log=console.print)
        except RuntimeError as exc:
            console.print(f"[red]{exc}[/]")
            raise typer.Exit(code=1) from exc
    written = X.run_experiments(home.models, home.reports / "tables", manifests, executor, keys, b,
                                log=console.print)
    for paths in written.values():
        for p in paths:
            if p.suffix == ".md":
                typer.echo(p.read_text())


def evaluate(
    n_bootstrap: int = typer.Option(1000, "--n-bootstrap", min=0, help="Bootstrap resamples for the 95% CIs"),
    seed: int = typer.Option(0, "--seed"),
    tsne: bool = typer.Option(True, "--tsne/--no-tsne", help="Draw the t-SNE of the latent z"),
) -> None:
    """Evaluate the latest trained models (models/runs.parquet) and rewrite reports/evaluation.json."""
    from curation.home import MammoHome
    from model import experiments as X
    from model.metrics import format_summary

    home = MammoHome.from_env().ensure()
    try:
        X.evaluate_runs(home.models, home.reports, n_bootstrap=n_bootstrap, seed=seed, tsne=tsne,
                        log=console.print)
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(code=1) from exc
    typer.echo(format_summary(home.evaluation_json))


def register(app: typer.Typer) -> None:
    app.command("experiments")(experiments)
    app.command("evaluate")(evaluate)
