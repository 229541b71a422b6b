"""The runs table (``models/runs.parquet``): one row per training the assets launched, never rewritten."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from curation.parquet_io import write_frame
from curation.schemas import RUNS_SCHEMA

RUN_ROLES = ("mtl", "baseline", "ensemble", "mc_dropout", "finetuned")
RUNS_COLUMNS = tuple(RUNS_SCHEMA.names)


def runs_table_path(models_root: Path) -> Path:
    return Path(models_root) / "runs.parquet"


def run_record(summary: Mapping, *, asset: str, created_at: str, dagster_run_id: str = "") -> dict:
    """One runs-table row from a ``summary.json`` written by the training process."""
    cfg = summary["train_config"]
    metrics = summary.get("metrics", {})
    return {
        "run_id": summary["eval_key"], "role": summary["role"], "asset": asset, "name": summary["name"],
        "created_at": created_at, "dagster_run_id": dagster_run_id, "config_hash": summary["config_hash"],
        "manifest_hash": summary["manifest_hash"], "model_path": "; ".join(summary["model_paths"]),
        "train_keys": json.dumps(summary["train_keys"]), "seed": int(summary["seed"]),
        "tasks": ",".join(cfg["tasks"]), "height": int(cfg["height"]), "width": int(cfg["width"]),
        "epochs": int(cfg["epochs"]), "batch_size": int(cfg["batch_size"]), "learning_rate": float(cfg["learning_rate"]),
        "label_plan": json.dumps(summary["spec"]["labels"], sort_keys=True),
        "spec": json.dumps(summary["spec"], sort_keys=True), "budget": json.dumps(summary["budget"], sort_keys=True),
        "metrics": json.dumps(metrics, sort_keys=True),
        "hmi_test_breastbin_auc": (metrics.get("hmi_test") or {}).get("breastbin_auc"),
        "inb_breastbin_auc": (metrics.get("inb") or {}).get("breastbin_auc"),
        "train_seconds": (summary.get("timing") or {}).get("seconds"),
    }


def append_runs(models_root: Path, records: Sequence[Mapping]) -> pd.DataFrame:
    """Append rows to ``models/runs.parquet`` (a history: a retrain adds a row, never rewrites one)."""
    path = runs_table_path(models_root)
    new = pd.DataFrame([{c: r.get(c) for c in RUNS_COLUMNS} for r in records], columns=list(RUNS_COLUMNS))
    old = pd.read_parquet(path) if path.is_file() else pd.DataFrame(columns=list(RUNS_COLUMNS))
    frames = [f for f in (old, new) if not f.empty]
    table = pd.concat(frames, ignore_index=True) if frames else new
    for col in ("hmi_test_breastbin_auc", "inb_breastbin_auc", "train_seconds", "learning_rate"):
        table[col] = pd.to_numeric(table[col], errors="coerce")
    write_frame(table, RUNS_SCHEMA, path)   # atomic, in the one schema of the table
    return table


def latest_runs(models_root: Path, roles: Sequence[str] = RUN_ROLES) -> dict[str, dict]:
    """The most recent row per role (what the evaluation reports)."""
    path = runs_table_path(models_root)
    if not path.is_file():
        return {}
    table = pd.read_parquet(path)
    out = {}
    for role in roles:
        part = table[table["role"] == role]
        if len(part):
            out[role] = part.sort_values("created_at", kind="mergesort").iloc[-1].to_dict()
    return out


def all_runs(models_root: Path) -> pd.DataFrame:
    """Every recorded run, oldest first (a run_id recorded twice — a reused model — appears once, latest)."""
    path = runs_table_path(models_root)
    if not path.is_file():
        return pd.DataFrame(columns=list(RUNS_COLUMNS))
    table = pd.read_parquet(path).sort_values("created_at", kind="mergesort")
    return table.drop_duplicates(["run_id", "role"], keep="last").reset_index(drop=True)

