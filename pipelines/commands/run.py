"""``mammo-mtl run`` — register batches as partitions and materialise the graph headless, with run config.

For a new user's cohort: put it under ``$MAMMO_HOME/cohorts/<batch>/`` (``mammo-mtl import`` writes
one), then ``mammo-mtl run <batch> --height 512 --workers 4 --epochs 20``. Each batch folder
becomes a ``batch`` dynamic partition on the persistent instance (``$MAMMO_HOME/dagster``, the one
``make ui`` shows), its per-batch assets run with the given config, then the cross-batch assets
run with a selection that fits the cohorts present: no ``vtb`` batch -> no fine-tuning; no ``inb``
batch -> evaluation has no external test (it says so).
"""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from rich.console import Console

from curation.home import MammoHome, cohort_of_batch

console = Console()
FINETUNE_ASSETS = {"finetuned_model"}
OPT_IN_ASSETS = {"experiment_tables"}     # the paper's tables: many trainings, only on request
TRAINING_ASSETS = {"mtl_model", "baseline_models", "finetuned_model", "evaluation", "experiment_tables"}


def downstream_keys(all_keys: list[str], cohorts: set[str], *, train: bool = True,
                    experiments: bool = False) -> list[str]:
    """The unpartitioned assets worth running for these cohorts (sorted)."""
    keep = set(all_keys)
    if "vtb" not in cohorts:
        keep -= FINETUNE_ASSETS
    if not experiments:
        keep -= OPT_IN_ASSETS
    if not train:
        keep -= TRAINING_ASSETS
    return sorted(keep)


def batch_run_config(height: int, workers: int) -> dict:
    return {"ops": {
        "ingest_batch": {"config": {"workers": workers}},
        "mine_batch_labels": {"config": {"n_process": workers}},
        "preprocessed_images": {"config": {"height": height, "mask_height": min(256, max(32, height)),
                                           "workers": workers}},
    }}


def downstream_run_config(height: int | None, width: int | None, epochs: int | None) -> dict:
    train = {k: v for k, v in (("height", height), ("width", width), ("epochs", epochs)) if v is not None}
    finetune = {"epochs": epochs} if epochs is not None else {}
    ops = {name: {"config": dict(train)} for name in ("mtl_model", "baseline_models") if train}
    if finetune:
        ops["finetuned_model"] = {"config": finetune}
    return {"ops": ops}


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _only_nodes(config: dict, node_names: set[str]) -> dict:
    return {**config, "ops": {k: v for k, v in config.get("ops", {}).items() if k in node_names}}


QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def run_pipeline(home: MammoHome, batches: list[str], *, height: int, width: int | None, workers: int,
                 epochs: int | None, downstream: bool, train: bool, experiments: bool, extra: dict) -> bool:
    from pipelines.instance import ensure_instance

    ensure_instance(home)
    import dagster as dg
    from pipelines.definitions import BATCH_JOB, defs, split_keys_by_partitioning
    from pipelines.partitions import batch_partitions

    instance = dg.DagsterInstance.get()
    known = set(instance.get_dynamic_partitions(batch_partitions.name))
    new = [b for b in batches if b not in known]
    if new:
        instance.add_dynamic_partitions(batch_partitions.name, new)
        console.print(f"registered partition(s): {', '.join(new)}")
    ok = True
    job = defs.resolve_job_def(BATCH_JOB)
    config = _merge(_merge(QUIET, batch_run_config(height, workers)), extra)
    for batch in batches:
        result = job.execute_in_process(partition_key=batch, instance=instance, raise_on_error=False,
                                        run_config=_only_nodes(config, set(job.graph.node_dict)))
        ok &= _report(result, f"batch {batch}")
    if not downstream:
        return ok
    cohorts = {cohort_of_batch(b) for b in home.batches()}
    _, unpartitioned = split_keys_by_partitioning(defs)
    keys = downstream_keys([k.to_user_string() for k in unpartitioned], cohorts, train=train,
                           experiments=experiments)
    if "vtb" not in cohorts:
        console.print("no vtb cohort: fine-tuning is not selected")
    if "inb" not in cohorts and train:
        console.print("no inb cohort: the evaluation has no external test set")
    selected = dg.define_asset_job("mammo_mtl_run", selection=dg.AssetSelection.assets(*keys))
    job = dg.Definitions.merge(defs, dg.Definitions(jobs=[selected])).resolve_job_def("mammo_mtl_run")
    config = _merge(_merge(QUIET, downstream_run_config(height if train else None, width, epochs)), extra)
    result = job.execute_in_process(instance=instance, raise_on_error=False,
                                    run_config=_only_nodes(config, set(job.graph.node_dict)))
    return _report(result, f"cross-batch assets ({', '.join(keys)})") and ok


def _report(result, label: str) -> bool:
    if result.success:
        console.print(f"[green]✓[/] {label}")
        return True
    console.print(f"[red]✗[/] {label}")
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None) if event.is_failure else None
        if error is not None:
            console.print(f"  [red]{event.step_key}[/]: {error.message.strip()[:1500]}")
    return False


def run(
    batches: list[str] = typer.Argument(None, help="Batch folders under $MAMMO_HOME/cohorts (default: all)"),
    height: int = typer.Option(256, "--height", min=32, help="Image height H for preprocessing and training"),
    width: int | None = typer.Option(None, "--width", min=64, help="Training width W (default: the trainer's)"),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes per batch step"),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Training (and fine-tuning) epochs"),
    downstream: bool = typer.Option(True, "--downstream/--batch-only", help="Also run manifests, training, evaluation"),
    train: bool = typer.Option(True, "--train/--no-train", help="Include training and evaluation"),
    experiments: bool = typer.Option(False, "--experiments", help="Also rebuild the paper's experiment tables"),
    config: Path | None = typer.Option(None, "--config", exists=True, dir_okay=False,
                                       help="YAML run config merged over the options (ops: {name: {config: ...}})"),
) -> None:
    """Register batches as partitions and materialise the Dagster graph headless, with run config."""
    home = MammoHome.from_env().ensure()
    present = home.batches()
    wanted = list(batches) if batches else present
    missing = [b for b in wanted if b not in present]
    if missing or not wanted:
        console.print(f"[red]no batch folder with dicom/ under {home.cohorts} for: {', '.join(missing) or '(any)'}[/]"
                      f" — present: {', '.join(present) or 'none'}")
        raise typer.Exit(2)
    extra = yaml.safe_load(config.read_text()) if config else {}
    if not isinstance(extra, dict):
        console.print(f"[red]{config}: a run config must be a mapping[/]")
        raise typer.Exit(2)
    ok = run_pipeline(home, wanted, height=height, width=width, workers=workers, epochs=epochs,
                      downstream=downstream, train=train, experiments=experiments, extra=extra)
    raise typer.Exit(0 if ok else 1)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
