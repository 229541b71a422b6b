"""The tables an experiment fills: tidy cells (value, sd, CI, p-value, text) in the paper's layouts,
and the ``seeds`` layout of the bench protocol (mean ± sd, per-seed DeLong, paired tests across
seeds). Markdown goes through the one renderer, :func:`model.report_tables.render`."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from model import metrics as M
from model.experiments import seeds as S
from model.experiments.budgets import Budget
from model.experiments.specs import TableSpec, reference_name
from model.report_tables import Grid, p_text, render


def _cell(values: Sequence[float | None], p_values: Sequence[float | None] = (),
          ci: Sequence[float | None] | None = None) -> dict:
    mean, sd = M.mean_sd([v for v in values if v is not None])
    ps = [p for p in p_values if p is not None]
    p = float(np.median(ps)) if ps else None
    if not np.isfinite(mean):
        text = "-"
    else:
        text = f"{100 * mean:.2f}"
        if len(values) > 1:
            text += f" ± {100 * sd:.2f}"
        elif ci and ci[0] is not None and ci[1] is not None:
            text += f" [{100 * ci[0]:.1f}–{100 * ci[1]:.1f}]"
        if p is not None:
            text += f" ({'<0.01' if p < 0.01 else f'{p:.2f}'})"
    return {"value": None if not np.isfinite(mean) else mean, "sd": None if not np.isfinite(sd) else sd,
            "ci_low": ci[0] if ci and len(values) == 1 else None, "ci_high": ci[1] if ci and len(values) == 1 else None,
            "p_value": p, "n_runs": len([v for v in values if v is not None]), "cell": text}




_get = S.get


def _metric_cell(runs: list[dict], path: Sequence[str], ci_key: str | None = None, p_key: str | None = None) -> dict:
    values = [_get(m, path) for m in runs]
    ci = _get(runs[0], list(path[:-1]) + [ci_key]) if ci_key and runs else None
    ps = [_get(m, list(path[:-1]) + [p_key]) for m in runs] if p_key else []
    return _cell(values, ps, ci)


STRATA_ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Overall", ("breastbin_auc",)),
    *((f"Density {d}", ("strata", "density", d, "auc")) for d in M.DENSITY_CLASSES),
    *((f"View {v}", ("strata", "view", v, "auc")) for v in M.VIEW_CLASSES),
)
TASK_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("breastbin AUC", "breastbin_auc", "breastbin_auc_ci"),
    ("ACR weighted accuracy", "acr_wacc", None),
    ("density (BI-RADS) weighted accuracy", "density_wacc", None),
    ("view AUC", "view_auc", "view_auc_ci"),
)
DATASET_TITLES = {"hmi_test": "hmi test", "inb": "inb (external)"}

SEED_COLUMNS: tuple[tuple[str, str], ...] = (("view AUC", "view_auc"), ("ACR wacc", "acr_wacc"),
                                             ("density wacc", "density_wacc"))


def _seed_cells(runs: list[dict], ref_runs: list[dict], is_ref: bool) -> list[tuple[str, dict]]:
    """Bench cells of one row on one dataset: AUC mean ± sd, per-seed DeLong p, tests across seeds."""
    path = ("breastbin_auc",)
    mean, sd, n = S.mean_sd(runs, path)
    auc = {"value": mean if np.isfinite(mean) else None, "sd": sd if np.isfinite(sd) else None, "n_runs": n,
           "cell": "-" if not np.isfinite(mean) else f"{100 * mean:.1f} ± {100 * sd:.1f} (n={n})"}
    cells = [("AUC mean ± sd", auc)]
    if is_ref:
        cells += [("per-seed DeLong p", {"cell": "ref"}), ("Δ AUC, paired t p, Wilcoxon p", {"cell": "ref"})]
    else:
        ps = [S.get(m, ("p_value_vs_reference",)) for m in runs]
        cells.append(("per-seed DeLong p", {"cell": ", ".join(p_text(p) for p in ps) or "-"}))
        t = S.paired_tests(runs, ref_runs, path)
        d = t["mean_difference"]
        text = "-" if d is None else f"{100 * d:+.1f}, t {p_text(t['t_p'])}, W {p_text(t['wilcoxon_p'])}"
        cells.append(("Δ AUC, paired t p, Wilcoxon p",
                      {"value": d, "p_value": t["t_p"], "wilcoxon_p": t["wilcoxon_p"], "n_runs": t["n_pairs"],
                       "cell": text}))
    for col, key in SEED_COLUMNS:
        m, s, k = S.mean_sd(runs, (key,))
        cells.append((col, {"value": m if np.isfinite(m) else None, "sd": s if np.isfinite(s) else None,
                            "n_runs": k, "cell": "-" if not k else f"{100 * m:.1f} ± {100 * s:.1f}"}))
    return cells


def build_table(spec: TableSpec, results: Mapping[str, Mapping[str, list[dict]]]) -> pd.DataFrame:
    """Tidy table: one row per (table, row, column) cell with value, sd, CI, p-value and the text."""
    recs: list[dict] = []
    ref_name = reference_name(spec)
    runs_of = lambda name, ds: list(results.get(name, {}).get(ds, []))  # noqa: E731

    def add(table: str, row: str, col: str, cell: dict, order: int):
        recs.append({"table": table, "row": row, "column": col, "row_order": order, **cell})

    for ti, ds in enumerate(spec.datasets):
        table = spec.tables[min(ti, len(spec.tables) - 1)]
        if not any(runs_of(r.name, ds) for r in spec.runs):
            continue
        if spec.layout == "seeds":
            for order, r in enumerate(spec.runs):
                for col, cell in _seed_cells(runs_of(r.name, ds), runs_of(ref_name, ds), r.name == ref_name):
                    add(spec.tables[0], r.name, f"{DATASET_TITLES[ds]}: {col}", cell, order)
        elif spec.layout == "strata":
            for order, (row, path) in enumerate(STRATA_ROWS):
                for r in spec.runs:
                    ci_key = "breastbin_auc_ci" if path == ("breastbin_auc",) else "auc_ci"
                    p_key = "p_value_vs_reference" if r.name != ref_name else None
                    add(table, row, r.name, _metric_cell(runs_of(r.name, ds), path, ci_key, p_key), order)
        elif spec.layout in ("ablation", "auc_pair"):
            for order, r in enumerate(spec.runs):
                if spec.layout == "ablation" and ti == 0:
                    for t in ("breastbin", "rec", "acr", "density", "view"):  # the paper's column order
                        add(table, r.name, t if t != "density" else "density (BI-RADS)",
                            {"cell": "+" if t in r.tasks else "−"}, order)
                p_key = "p_value_vs_reference" if r.name != ref_name else None
                add(table, r.name, DATASET_TITLES[ds], _metric_cell(runs_of(r.name, ds), ("breastbin_auc",),
                                                                    "breastbin_auc_ci", p_key), order)
        elif spec.layout == "tasks":
            for order, r in enumerate(spec.runs):
                for col, key, ci_key in TASK_COLUMNS:
                    add(table, r.name, col, _metric_cell(runs_of(r.name, ds), (key,), ci_key), order)
    if spec.layout in ("ablation", "auc_pair"):
        for rec in recs:
            rec["table"] = spec.tables[0]
    return pd.DataFrame(recs)


def table_grid(spec: TableSpec, frame: pd.DataFrame, table: str, b: Budget) -> Grid:
    part = frame[frame["table"] == table]
    cols = list(dict.fromkeys(part["column"]))
    rows = list(dict.fromkeys(part.sort_values("row_order", kind="mergesort")["row"]))
    grid = part.set_index(["row", "column"])["cell"]
    ds = spec.datasets[spec.tables.index(table)] if spec.layout in ("strata", "tasks") else None
    title = f"Table {table} — {spec.title}" + (f" — {DATASET_TITLES[ds]}" if ds else "")
    body = [[row, *(str(grid.get((row, c), "-")) for c in cols)] for row in rows]
    seeds = "mean ± sd over seeds" if b.seeds > 1 else "one seed: value [bootstrap 95% CI]"
    notes = [f"Values in %, breast-wise (max over views) unless a view stratum; {seeds}; (p) = DeLong "
             f"p-value against the reference row. Budget `{b.name}`: H={b.height}, W={b.width}, "
             f"{b.epochs} epochs, {b.seeds} seed(s). Synthetic demo data is a functional benchmark, "
             f"never a clinical claim."]
    if spec.layout == "seeds":
        notes.append(f"Reference row: {reference_name(spec)}. Δ AUC = mean over seeds of (row − reference), "
                     f"paired by seed; t = paired t-test, W = Wilcoxon signed-rank over seeds (with 3 seeds W "
                     f"cannot go below 0.25).")
    if spec.layout == "strata":
        notes.append("Wu et al. (pre-trained weights, not shipped) is not reproduced.")
    return Grid(["", *cols], body, title=title, notes=notes)


def table_markdown(spec: TableSpec, frame: pd.DataFrame, table: str, b: Budget) -> str:
    return render(table_grid(spec, frame, table, b), "markdown")


def write_tables(spec: TableSpec, results: Mapping[str, Mapping[str, list[dict]]], root: Path, b: Budget) -> list[Path]:
    import json

    frame = build_table(spec, results)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    if frame.empty:
        return written
    for table in dict.fromkeys(frame["table"]):
        md = root / f"table_{table}.md"
        md.write_text(table_markdown(spec, frame, table, b))
        pq_path = root / f"table_{table}.parquet"
        frame[frame["table"] == table].reset_index(drop=True).to_parquet(pq_path, index=False)
        written += [md, pq_path]
    seeds_path = root / f"seed_results_{spec.number}.json"
    seeds_path.write_text(json.dumps(results, indent=2, sort_keys=True, allow_nan=False, default=str) + "\n")
    written.append(seeds_path)
    return written
