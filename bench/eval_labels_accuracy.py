"""Accuracy of the label miner against the demo generator's truth (``truth.parquet`` breast rows).

Usage: ``python bench/eval_labels_accuracy.py /tmp/lm_hmi /tmp/lm_inb /tmp/lm_vtb [--out bench/out/accuracy]``
(cohort folders written by ``mammo-mtl demo-data``). Runs ``mine_labels`` exactly as the CLI does,
then, per breast:

* ``acr`` / ``density`` exact: share of breasts whose report states a value (truth not null) where the
  mined label equals it;
* invented: breasts whose truth is missing but a label was mined (must be 0). Double-read exams
  (two reports, one accession) are merged by the miner; there the expected assessment is the first
  reader's, else the second reader's (``second_reader_acr``), and a breast where the readers
  disagree is scored as "conflict flagged" instead; the truth has no second-reader density, so
  a density mined from the second report of an exam is "from second reader", not invented;
* laterality attribution: over examinations whose two breasts have different true categories, the
  share where both breasts got their own value (a value leaking to the other side fails it).
Lists the first disagreements so a reader can judge the parser — or the truth.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from label_mining.pipeline import mine_labels  # noqa: E402


def evaluate(cohort: Path, out: Path, show: int = 8) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    summary = mine_labels(cohort / "reports.csv", out, pathology_csv=cohort / "pathology.csv")
    mined = pd.read_parquet(out / "breast_labels.parquet")
    truth = pd.read_parquet(cohort / "truth.parquet")
    truth = truth[(truth["level"] == "breast") & truth["report_present"].fillna(False).astype(bool)]
    wide = mined.pivot_table(index=["accession_number", "laterality"], columns="task", values="label",
                             aggfunc="first", dropna=False).reset_index()
    wide = wide.rename(columns={t: f"{t}_mined" for t in ("acr", "density", "breastbin")})
    joined = truth.merge(wide, on=["accession_number", "laterality"], how="left", suffixes=("", "_mined"))
    res = {"cohort": cohort.name, "reports": summary.n_reports, "breasts": len(joined),
           "reports_per_second": round(summary.reports_per_second, 1)}
    reports = pd.read_csv(cohort / "reports.csv", dtype=str).set_index("accession_number")["report_text"]
    reports = reports[~reports.index.duplicated()].fillna("")   # double-read exams: show the first report
    double = set(
        pd.read_csv(cohort / "reports.csv", dtype=str)["accession_number"].value_counts().loc[lambda c: c > 1].index)
    joined["double_read"] = joined["accession_number"].isin(double)
    if "second_reader_acr" in joined:
        disagree = joined["readers_disagree"].fillna(False).astype(bool)
        joined["expected_acr"] = joined["report_acr"].where(joined["report_acr"].notna(), joined["second_reader_acr"])
        joined.loc[disagree, "expected_acr"] = None
        flagged = mined.set_index(["accession_number", "laterality", "task"])["conflict"]
        dis = joined[disagree]
        res["readers_disagree_breasts"] = int(len(dis))
        res["readers_disagree_flagged"] = int(sum(bool(flagged.get((a, s_, "acr"), False))
                                                  for a, s_ in zip(dis["accession_number"], dis["laterality"])))
    else:
        joined["expected_acr"] = joined["report_acr"]
        disagree = pd.Series(False, index=joined.index)
    for task, col, conv in (("acr", "expected_acr", lambda v: str(int(v))), ("density", "report_density", str)):
        has = joined[col].notna()
        if task == "acr":
            skip = disagree
        else:
            skip = ~has & joined["double_read"] & joined[f"{task}_mined"].notna()
            res["density_from_second_reader"] = int(skip.sum())
        want = joined.loc[has, col].map(conv)
        got = joined.loc[has, f"{task}_mined"]
        ok = want == got
        res[f"{task}_exact"] = round(float(ok.mean()), 4)
        res[f"{task}_n"] = int(has.sum())
        res[f"{task}_missed"] = int(got.isna().sum())
        invented = joined.loc[~has & ~skip, f"{task}_mined"].notna()
        res[f"{task}_invented"] = int(invented.sum())
        res[f"{task}_truth_missing"] = int((~has & ~skip).sum())
        bad = joined.loc[has].loc[~ok.values]
        res[f"{task}_examples"] = [
            {"accession": r.accession_number, "side": r.laterality, "truth": conv(getattr(r, col)),
             "mined": getattr(r, f"{task}_mined"), "report": reports.get(r.accession_number, "")[:600]}
            for r in bad.head(show).itertuples()]
        res[f"{task}_invented_examples"] = [
            {"accession": r.accession_number, "side": r.laterality, "mined": getattr(r, f"{task}_mined"),
             "report": reports.get(r.accession_number, "")[:600]}
            for r in joined.loc[~has & ~skip].loc[invented.values].head(show).itertuples()]
    both = joined[joined["expected_acr"].notna()].copy()
    both["ok"] = both["expected_acr"].map(lambda v: str(int(v))) == both["acr_mined"]
    by_exam = both.groupby("accession_number").agg(n=("ok", "size"), ok=("ok", "all"),
                                                   distinct=("expected_acr", "nunique"))
    lateral = by_exam[(by_exam["n"] == 2) & (by_exam["distinct"] == 2)]
    res["laterality_exams"] = int(len(lateral))
    res["laterality_attribution"] = round(float(lateral["ok"].mean()), 4) if len(lateral) else None
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("cohorts", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=Path("bench/out/accuracy"))
    ap.add_argument("--examples", type=int, default=8)
    args = ap.parse_args()
    results = [evaluate(c, args.out / c.name, args.examples) for c in args.cohorts]
    total = {}
    for task in ("acr", "density"):
        n = sum(r[f"{task}_n"] for r in results)
        total[f"{task}_exact"] = round(sum(r[f"{task}_exact"] * r[f"{task}_n"] for r in results) / n, 4) if n else None
        total[f"{task}_invented"] = sum(r[f"{task}_invented"] for r in results)
    exams = sum(r["laterality_exams"] for r in results)
    total["laterality_attribution"] = round(sum((r["laterality_attribution"] or 0) * r["laterality_exams"]
                                                for r in results) / exams, 4) if exams else None
    total["reports"] = sum(r["reports"] for r in results)
    print(json.dumps({"overall": total, "cohorts": results}, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
