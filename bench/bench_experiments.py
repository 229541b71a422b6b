"""Tables of the CPU bench protocol from a log of finished (arm, seed) runs.

``mammo-mtl experiments --budget bench`` runs the protocol in-tree and writes its own tables; this
script tabulates the runs of ``bench/README_experiments.md``, which were made by a standalone driver
that appends one JSON line per finished (arm, seed) — ``arm, seed, eval_key, cpu_s, wall_s,
predictions: {dataset: parquet}`` — so a partially finished protocol can be reported as it stands.
Every mean, sd and test comes from the per-seed metrics (``model.experiments.seeds``).

    .venv/bin/python bench/bench_experiments.py --log $MAMMO_HOME/bench_runs.jsonl
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import pandas as pd

from model import metrics as M
from model.experiments import seeds as S
from model.report_tables import Grid, p_text, render

GROUPS = {  # table -> (reference arm, arms)
    "Table 2 arms": ("T2 MTL", ["T2 MTL", "T2 Baseline", "T2 MC-drop", "T2 Ensemble5"]),
    "Use all your data (25 % confirmed)": ("A MTL 25% (u weights)", [
        "A MTL 25% (u weights)", "A single-task 25%", "A single-task ACR-derived u=0", "A MTL ACR-derived u=0.5"]),
    "Table 5 arms (breastbin kept)": ("T2 MTL", ["T2 MTL", "T5 breast-25%", "T5 breast-50%", "T5 breast-75%"]),
    "Table 4 arms": ("T2 MTL", ["T2 MTL", "T4 breastbin", "T4 +rec", "T4 +ACR", "T4 +density", "T4 +view"]),
    "Tables 8/9 arms": ("T8 FT u0.00", ["T8 FT u0.00", "T8 FT u0.90"]),
}
DATASETS = ("hmi_test", "inb")


def load(log: Path) -> dict[str, dict[int, dict]]:
    runs: dict[str, dict[int, dict]] = defaultdict(dict)
    for line in log.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            runs[rec["arm"]][int(rec["seed"])] = rec
    return runs


def per_seed_metrics(runs, ref_arm: str, arm: str, ds: str) -> list[dict]:
    out = []
    for seed, rec in sorted(runs.get(arm, {}).items()):
        preds = pd.read_parquet(rec["predictions"][ds])
        ref_rec = runs.get(ref_arm, {}).get(seed)
        ref = pd.read_parquet(ref_rec["predictions"][ds]) if ref_rec and arm != ref_arm else None
        m = M.evaluate_predictions(preds, n_bootstrap=0, reference=ref)
        m["seed"] = seed
        out.append(m)
    return out


def _ms(runs, key) -> str:
    mean, sd, n = S.mean_sd(runs, (key,))
    return "–" if not n else f"{100 * mean:.1f} ± {100 * sd:.1f}"


def table(runs, title: str, ref_arm: str, arms: list[str]) -> str | None:
    arms = [a for a in arms if a in runs]
    if not [a for a in arms if a != ref_arm]:
        return None  # nothing to compare yet
    rows = []
    for arm in arms:
        cells = [arm, str(len(runs[arm]))]
        for ds in DATASETS:
            ms = per_seed_metrics(runs, ref_arm, arm, ds)
            ref = per_seed_metrics(runs, ref_arm, ref_arm, ds)
            mean, sd, n = S.mean_sd(ms, ("breastbin_auc",))
            cells.append("–" if not n else f"{100 * mean:.1f} ± {100 * sd:.1f}")
            if arm == ref_arm or ref_arm not in runs:
                cells += ["ref" if arm == ref_arm else "–", "ref" if arm == ref_arm else "–"]
            else:
                cells.append(", ".join(p_text(m.get("p_value_vs_reference")) for m in ms))
                t = S.paired_tests(ms, ref, ("breastbin_auc",))
                d = t["mean_difference"]
                cells.append("–" if d is None else f"{100 * d:+.1f}; t {p_text(t['t_p'])}; W {p_text(t['wilcoxon_p'])}"
                             f" (n={t['n_pairs']})")
            if ds == "hmi_test":
                cells += [_ms(ms, "view_auc"), _ms(ms, "density_wacc"), _ms(ms, "acr_wacc")]
        cpu = [r["cpu_s"] for r in runs[arm].values()]
        cells.append(f"{sum(cpu) / len(cpu):.0f}")
        rows.append(cells)
    cols = ["arm", "seeds", "hmi AUC", "hmi per-seed DeLong p", "hmi Δ vs ref; paired t; Wilcoxon",
            "view AUC", "density wacc", "ACR wacc", "inb AUC", "inb per-seed DeLong p",
            "inb Δ vs ref; paired t; Wilcoxon", "CPU s / seed"]
    notes = [f"Reference arm: {ref_arm}. AUC breast-wise in %, mean ± sd over seeds; view/density/ACR on hmi test."]
    return render(Grid(cols, rows, title=title, notes=notes), "markdown")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=None, help="write the markdown here as well")
    args = ap.parse_args()
    runs = load(args.log)
    parts = [t for title, (ref, arms) in GROUPS.items() if (t := table(runs, title, ref, arms))]
    cpu = {arm: sum(r["cpu_s"] for r in by.values()) / len(by) for arm, by in runs.items()}
    parts.append("Finished (arm, seed) runs: " + ", ".join(f"{a} ×{len(b)}" for a, b in runs.items())
                 + f". Mean CPU seconds per (arm, seed): {json.dumps({a: round(c) for a, c in cpu.items()})}")
    text = "\n\n".join(parts) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
