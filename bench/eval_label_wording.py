"""Does report wording change the mined labels? (issue 14.4)

For a seeded corpus of ~300-character reports (the templates of ``bench_labels.py`` plus
finding-"density" sentences and glued impressions), each report is mined as written and after the
transformations real exports show: spaces around punctuation removed, all lower case, both. The
figure is the share of (breast, task) labels that stay the same, and the number of reports in which
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


def corpus(n: int, seed: int = 11) -> list[tuple[str, bool]]:
    """(report, has a composition statement)."""
    sys.path.insert(0, str(HERE))
    import bench_labels as b

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        with_density = rng.random() < 0.6
        parts = [rng.choice(b.HISTORY)]
        if with_density:
            parts.append(rng.choice(b.DENSITY))
        parts += [rng.choice(b.FINDINGS + b.REAL_FINDINGS * 2), rng.choice(b.IMPRESSION + b.REAL_IMPRESSION[:3])]
        text = " ".join(parts).format(size=rng.randint(3, 45), clock=rng.randint(1, 12), year=2019,
                                      date="2019-01-01")
        out.append((text, with_density))
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

    variants = {"glued": glue, "lower": str.lower, "glued+lower": lambda t: glue(t).lower()}
    same = {v: 0 for v in variants}
    total = 0
    invented_density = 0
    for text, with_density in reports:
        base = labels(text)
        total += len(base)
        if not with_density and any(v is not None for (s, t), v in base.items() if t == "density"):
            invented_density += 1
        for name, f in variants.items():
            got = labels(f(text))
            same[name] += sum(got[k] == v for k, v in base.items())
    print(json.dumps({"root": str(args.root), "reports": len(reports), "labels": total,
                      "unchanged_share": {k: round(v / total, 4) for k, v in same.items()},
                      "reports_without_composition_given_a_density_label": invented_density}, indent=2))


if __name__ == "__main__":
    main()
