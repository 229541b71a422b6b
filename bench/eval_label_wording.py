"""Does report wording change the mined labels? (issue 14.4)

For a seeded corpus of ~300-character reports (the templates of ``bench_labels.py`` plus
finding-"density" sentences and glued impressions), each report is mined as written and after the
transformations real exports show: spaces around punctuation removed, all lower case, both. The
figure is the share of (breast, task) labels equal to what the templates state, and the number of reports in which
a finding's "density" ("focal asymmetric density", "high density mass", "increased density")
produced a composition label although no composition was written.

Usage: ``python bench/eval_label_wording.py [--reports 3000] [--root DIR]`` — ``--root`` runs another
checkout's ``label_mining`` (e.g. an older commit unpacked with ``git archive``) on the same corpus.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


# expected labels of the template sentences (bench_labels.py): density letter; (left, right) assessment
DENSITY_TRUTH = ["B", "C", "A", "C", "D", "B"]        # "Density: B/C." -> the denser class (policy default)
# (the 8th impression, "Highly suggestive of malignancy, BI-RADS 5 left.", is left out: is the side-less
# phrase about both breasts? Its reading is not what this measures)
IMPRESSION_TRUTH = [("1", "1"), ("2", "2"), ("3", "3"), ("4", "1"), ("4", None), ("2", "2"), ("4", None)]
REAL_IMPRESSION_TRUTH = [("3", "3"), ("4", None), ("2", "2")]


def corpus(n: int, seed: int = 11) -> list[tuple[str, dict]]:
    """(report, expected {(side, task): label}); findings sentences state no label (finding densities included)."""
    sys.path.insert(0, str(HERE))
    import bench_labels as b

    impressions = list(zip(b.IMPRESSION[:7] + b.REAL_IMPRESSION[:3], IMPRESSION_TRUTH + REAL_IMPRESSION_TRUTH))
    assert len(b.DENSITY) == len(DENSITY_TRUTH)
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []          # (a density sentence right after "Clinical history: ..." belongs to that section)
        density = None
        if rng.random() < 0.6:
            k = rng.randrange(len(b.DENSITY))
            parts.append(b.DENSITY[k])
            density = DENSITY_TRUTH[k]
        impression, (left, right) = rng.choice(impressions)
        parts += [rng.choice(b.FINDINGS + b.REAL_FINDINGS * 2), impression, rng.choice(b.RECOMMENDATION)]
        text = " ".join(parts).format(size=rng.randint(3, 45), clock=rng.randint(1, 12), year=2019,
                                      date="2019-01-01")
        out.append((text, {("L", "acr"): left, ("R", "acr"): right, ("L", "density"): density,
                           ("R", "density"): density}))
    return out


def glue(text: str) -> str:
    for a, b in ((": ", ":"), (" (", "("), (", ", ","), (") ", ")")):
        text = text.replace(a, b)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reports", type=int, default=3000)
    ap.add_argument("--root", type=Path, default=HERE.parent)
    args = ap.parse_args()
    reports = corpus(args.reports)
    sys.path.insert(0, str(args.root.resolve()))
    from label_mining.api import mine_report

    def labels(text):
        mined, _ = mine_report(text)
        return {k: r.label for k, r in mined.items() if k[1] in ("acr", "density")}

    variants = {"as written": lambda t: t, "glued": glue, "lower": str.lower, "glued+lower": lambda t: glue(t).lower()}
    right = {v: 0 for v in variants}
    total = 0
    invented_density = {v: 0 for v in variants}
    for text, truth in reports:
        total += len(truth)
        for name, f in variants.items():
            got = labels(f(text))
            right[name] += sum(got[k] == v for k, v in truth.items())
            if truth[("L", "density")] is None and (got[("L", "density")] or got[("R", "density")]):
                invented_density[name] += 1
    print(json.dumps({"root": str(args.root), "reports": len(reports), "labels": total,
                      "labels_as_expected": {k: round(v / total, 4) for k, v in right.items()},
                      "reports_without_composition_given_a_density_label": invented_density}, indent=2))


if __name__ == "__main__":
    main()
