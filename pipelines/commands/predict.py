"""``mammo-mtl train`` and ``mammo-mtl predict`` — the network from the command line,
without a Dagster instance (the ``mtl_model`` asset calls the same ``model.train.train``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

console = Console(stderr=True)


def _rows(manifest: Path, split: Optional[str]):
    from model.data import read_manifest

    try:
        rows = read_manifest(manifest)
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="--manifest") from exc
    if split is not None:
        if "split" not in rows.columns:
            raise typer.BadParameter(f"{manifest} has no 'split' column to filter on", param_hint="--split")
        rows = rows[rows["split"] == split].reset_index(drop=True)
        if rows.empty:
            raise typer.BadParameter(f"no rows with split={split!r} in {manifest}", param_hint="--split")
    return rows


def _image_root(image_root: Optional[Path]) -> Path:
    from curation.home import MammoHome

    return image_root if image_root is not None else MammoHome.from_env().cache


def predict(
    model: Path = typer.Option(..., "--model", exists=True, dir_okay=False, help="trained .keras file"),
    manifest: Path = typer.Option(..., "--manifest", exists=True,
                                  help="manifest Parquet file or Hive-partitioned directory"),
    out: Path = typer.Option(..., "--out", help="predictions Parquet file to write"),
    image_root: Optional[Path] = typer.Option(None, "--image-root", help="cache root; default $MAMMO_HOME/cache"),
    split: Optional[str] = typer.Option(None, "--split", help="only rows of this split (train/val/test/finetune)"),
    mc_passes: int = typer.Option(0, "--mc-passes", min=0, help="MC-dropout forward passes (paper: 10); 0 = off"),
    latent: bool = typer.Option(False, "--latent", help="add the 496-d latent z_0..z_495"),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
) -> None:
    """Per-image probabilities (p_breastbin, p_acr_*, p_density_*, p_view_MLO) for a manifest."""
    from model.predict import predict as run_predict

    rows = _rows(manifest, split)
    try:
        df = run_predict(model, rows, _image_root(image_root), mc_passes=mc_passes, return_latent=latent,
                         batch_size=batch_size)
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[red]cannot predict:[/] {exc}")
        raise typer.Exit(code=1) from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(out, index=False)
    console.print(f"wrote {len(df)} prediction(s) to {out}")


def train(
    manifest: Path = typer.Option(..., "--manifest", exists=True, help="training manifest (file or Hive directory)"),
    val_manifest: Optional[Path] = typer.Option(None, "--val-manifest", exists=True,
                                                help="validation manifest; default: --val-split rows of --manifest"),
    train_split: Optional[str] = typer.Option(None, "--train-split", help="filter --manifest to this split"),
    val_split: Optional[str] = typer.Option(None, "--val-split", help="validation rows = this split of --manifest"),
    config: Optional[Path] = typer.Option(None, "--config", exists=True, dir_okay=False,
                                          help="TrainConfig as JSON or YAML; options below override it"),
    tasks: Optional[str] = typer.Option(None, "--tasks", help="comma list of breastbin,acr,density,view,rec"),
    height: Optional[int] = typer.Option(None, "--height"),
    width: Optional[int] = typer.Option(None, "--width"),
    epochs: Optional[int] = typer.Option(None, "--epochs"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    seed: Optional[int] = typer.Option(None, "--seed"),
    run_id: Optional[str] = typer.Option(None, "--run-id", help="folder under $MAMMO_HOME/models; default from config hash"),
    image_root: Optional[Path] = typer.Option(None, "--image-root", help="cache root; default $MAMMO_HOME/cache"),
    init_model: Optional[Path] = typer.Option(None, "--init-model", exists=True, dir_okay=False,
                                              help="start from these weights (fine-tuning)"),
    export: bool = typer.Option(True, "--export/--no-export", help="also write saved_model/ with a serving signature"),
) -> None:
    """Train the multi-task network; re-running the same command resumes an interrupted run."""
    import yaml
    from pydantic import ValidationError

    from model.config import TrainConfig
    from model.export import export_saved_model, model_dir
    from model.train import train as run_train

    fields: dict = {}
    if config is not None:
        text = config.read_text()
        fields = json.loads(text) if config.suffix == ".json" else (yaml.safe_load(text) or {})
        if not isinstance(fields, dict):
            raise typer.BadParameter(f"{config} must hold a mapping of TrainConfig fields", param_hint="--config")
    overrides = {"tasks": tasks, "height": height, "width": width, "epochs": epochs, "batch_size": batch_size,
                 "seed": seed}
    fields.update({k: v for k, v in overrides.items() if v is not None})
    try:
        cfg = TrainConfig.model_validate(fields)
    except ValidationError as exc:
        raise typer.BadParameter(str(exc), param_hint="--config/options") from exc

    train_rows = _rows(manifest, train_split)
    val_rows = _rows(val_manifest, None) if val_manifest else (_rows(manifest, val_split) if val_split else None)
    try:
        out_dir = model_dir(run_id or f"mtl-{cfg.config_hash()}")
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--run-id") from exc
    console.print(f"training {list(cfg.tasks)} at {cfg.height}x{cfg.width} on {len(train_rows)} image(s), "
                  f"{0 if val_rows is None else len(val_rows)} for validation -> {out_dir}")
    try:
        result = run_train(cfg, train_rows, val_rows, _image_root(image_root), out_dir, init_model=init_model)
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[red]cannot train:[/] {exc}")
        raise typer.Exit(code=1) from exc
    console.print(f"best epoch {result.best_epoch} ({result.selection_metric} = {result.best_value:.4f}); "
                  f"model {result.model_path}")
    if export:
        console.print(f"SavedModel {export_saved_model(result.model_path, out_dir / 'saved_model')}")


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)
    app.command("train")(train)
