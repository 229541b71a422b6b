"""Throughput of the label miner, end to end from CSV to Parquet (``mine_labels``), 1 and 2 processes.

Reports both wall time and CPU time (this process + worker processes, from ``getrusage``): on a
shared machine the wall clock measures the neighbours too, so "per core" is reports per CPU-second.

Usage: ``python bench/bench_labels.py [--reports 30000] [--out bench/out/labels]``. The corpus is a
seeded mix of screening-report phrasings of about 300 characters (assessment, density, findings,
comparison, recommendation, hedges, per-breast statements); it measures speed, not accuracy (see
bench/README_labels.md for the accuracy run against the demo cohort's truth).
Also times the reference points of the issue on this machine: the bare spaCy tokenizer and
tokenizer + a 20-pattern Matcher over whole reports.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HISTORY = ["Clinical history: screening.", "Indication: routine screening, no complaints.",
           "History: family history of breast cancer.", "Clinical information: palpable lump left breast.",
           "Reason for exam: annual screening mammogram."]
TECHNIQUE = ["Technique: bilateral CC and MLO views.", "Standard two-view digital mammography of both breasts.",
             "Digital breast tomosynthesis, 4 views."]
COMPARISON = ["Comparison: prior study from {year}, unchanged.", "No prior studies available for comparison.",
              "Compared to previous mammogram of {date}, no significant change."]
DENSITY = ["Breast composition: scattered areas of fibroglandular density (ACR B).",
           "The breasts are heterogeneously dense, which may obscure small masses (ACR C).",
           "The breasts are almost entirely fatty.", "Density: B/C.", "Breast density ACR D, extremely dense.",
           "Composition: type 2."]
FINDINGS = ["Findings: No suspicious mass, calcification or architectural distortion.",
            "Findings: Benign-appearing calcifications in the right breast, {size} mm.",
            "Findings: A {size} mm irregular spiculated mass in the left breast at {clock} o'clock.",
            "Findings: Stable circumscribed oval mass right breast at {clock} o'clock, {size} mm, likely a fibroadenoma.",
            "Findings: Grouped amorphous microcalcifications left upper outer quadrant over {size} mm."]
IMPRESSION = ["Impression: Negative mammogram. BI-RADS 1.", "Impression: Benign findings, BI-RADS 2.",
              "Impression: Probably benign finding, BI-RADS 3, short interval follow-up.",
              "Impression: BI-RADS 1 right, BI-RADS 4 left.", "Assessment: BIRADS 4b left breast.",
              "Conclusion: ACR 2 bilateral.", "Impression: Suspicious mass left breast. BI-RADS 4.",
              "Impression: Highly suggestive of malignancy, BI-RADS 5 left."]
# real report wording (issue 14.4): findings called "density", glued punctuation, all-lower-case reports
REAL_FINDINGS = ["Findings: Focal asymmetric density in the left breast at {clock} o'clock.",
                 "Findings: High density mass right breast, {size} mm, irregular margins.",
                 "Findings: Increased density in the left upper outer quadrant compared with prior."]
REAL_IMPRESSION = ["Impression: BIRADS:3, short interval follow-up.", "Impression: BI-RADS-4a left.",
                   "Assessment: bi-rads 2 bilateral.", "Conclusion: parenchyma(ACR B). BIRADS:2"]
RECOMMENDATION = ["Recommendation: routine screening in 1 year.", "Recommendation: ultrasound-guided biopsy.",
                  "Recommendation: diagnostic mammogram in 6 months."]


def _glue(text: str) -> str:
    """Remove the spaces real exports lose around punctuation: "parenchyma (ACR B)" -> "parenchyma(ACR B)"."""
    return text.replace(": ", ":").replace(" (", "(").replace(", ", ",")


def make_corpus(path: Path, n: int, seed: int = 7, wording: str = "clean") -> int:
    """``wording="real"``: a third of the findings/impressions are finding-"density" and glued forms,
    40 % of reports lose their spaces around punctuation, 35 % are lower-case throughout."""
    rng = random.Random(seed)
    findings, impressions = FINDINGS, IMPRESSION
    if wording == "real":
        findings, impressions = FINDINGS + REAL_FINDINGS, IMPRESSION + REAL_IMPRESSION
    total_chars = 0
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["accession_number", "patient_id", "study_date", "report_text", "reader_id", "reader_level"])
        for i in range(n):
            parts = [rng.choice(HISTORY), rng.choice(TECHNIQUE)]
            if rng.random() < 0.5:
                parts.append(rng.choice(COMPARISON))
            parts += [rng.choice(DENSITY), rng.choice(findings), rng.choice(impressions)]
            if rng.random() < 0.3:
                parts.append(rng.choice(RECOMMENDATION))
            text = " ".join(parts).format(size=rng.randint(3, 45), clock=rng.randint(1, 12),
                                          year=rng.randint(2005, 2024),
                                          date=f"{rng.randint(2005, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
            if wording == "real":
                if rng.random() < 0.4:
                    text = _glue(text)
                if rng.random() < 0.35:
                    text = text.lower()
            total_chars += len(text)
            w.writerow([f"ACC{i:08d}", f"PID{i // 3:07d}", "2024-03-01", text, "r1",
                        rng.choice(["senior", "junior", "resident", ""])])
    return total_chars


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def reference_points(texts: list[str]) -> dict[str, float]:
    import spacy
    from spacy.matcher import Matcher

    nlp = spacy.blank("en")
    t0 = time.process_time()
    for _ in nlp.tokenizer.pipe(texts):
        pass
    tok = len(texts) / (time.process_time() - t0)
    matcher = Matcher(nlp.vocab)
    words = ["birads", "density", "dense", "fatty", "benign", "suspicious", "negative", "right", "left", "mass",
             "calcification", "acr", "category", "malignancy", "biopsy", "prior", "no", "probably", "impression", "findings"]
    for i, wd in enumerate(words):
        matcher.add(f"p{i}", [[{"LOWER": wd}, {"IS_PUNCT": True, "OP": "?"}, {"LIKE_NUM": True, "OP": "?"}]])
    t0 = time.process_time()
    for doc in nlp.tokenizer.pipe(texts):
        matcher(doc)
    tok_match = len(texts) / (time.process_time() - t0)
    return {"spacy_tokenizer_only_reports_per_cpu_s": round(tok, 1),
            "spacy_tokenizer_plus_20_pattern_matcher_reports_per_cpu_s": round(tok_match, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reports", type=int, default=30000)
    ap.add_argument("--out", type=Path, default=Path("bench/out/labels"))
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--wording", choices=["clean", "real"], default="clean",
                    help="synthetic corpus: clean phrasing, or real-report wording (glued punctuation, lower case, "
                         "finding densities)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--corpus", type=Path, nargs="*", default=None,
                    help="existing reports.csv files (e.g. demo cohorts) to time instead of the synthetic corpus")
    args = ap.parse_args()
    from label_mining.chunks import current_context
    from label_mining.pipeline import mine_labels

    args.out.mkdir(parents=True, exist_ok=True)
    corpus = args.out / "reports.csv"
    if args.corpus:
        rows = []
        for path in args.corpus:
            with path.open(newline="") as fh:
                rows += list(csv.DictReader(fh))
        with corpus.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        n_reports, chars = len(rows), sum(len(r["report_text"] or "") for r in rows)
    else:
        n_reports, chars = args.reports, make_corpus(corpus, args.reports, wording=args.wording)
    results = {"corpus": [str(p) for p in args.corpus] if args.corpus else f"synthetic ({args.wording} wording, seed 7)",
               "reports": n_reports,
               "mean_chars_per_report": round(chars / n_reports, 1)}
    with corpus.open() as fh:
        texts = [row["report_text"] for row in csv.DictReader(fh)][:5000]
    results.update(reference_points(texts))
    for n in args.processes:
        best = None
        for _ in range(args.repeats):
            c0 = cpu_seconds()
            summary = mine_labels(corpus, args.out / f"run_{n}", n_process=n)
            cpu = cpu_seconds() - c0
            if best is None or cpu < best[1]:
                best = (summary, cpu)
        summary, cpu = best
        results[f"n_process_{n}"] = {
            "wall_seconds": round(summary.seconds, 3),
            "cpu_seconds": round(cpu, 3),
            "reports_per_second_wall": round(summary.reports_per_second, 1),
            "reports_per_cpu_second": round(summary.n_reports / cpu, 1),
            "mb_text_per_cpu_second": round(chars / cpu / 1e6, 3),
            "load_average_1min": round(os.getloadavg()[0], 2),
        }
        if n == 1:
            # the sentence cache of the run's parser (label_mining/sentence_reading.py): how much this corpus repeats
            reader = current_context().parser.reader
            results["n_process_1"]["sentence_reads"] = {"distinct_read_by_spacy": reader.misses,
                                                        "repeats_from_cache_or_chunk": reader.hits}
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
