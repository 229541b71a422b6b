"""Aggregation over seeds: every mean, sd and test of a bench table comes from per-seed results.

``runs`` is a list of per-seed metric dicts (``model.metrics.evaluate_predictions`` output plus a
``seed``). A row is compared with the reference row (a) per seed, by DeLong's paired test on the same
test images, and (b) across seeds, by a paired t-test and a Wilcoxon signed-rank test over the
per-seed AUCs paired by seed. With 3 seeds the smallest two-sided Wilcoxon p is 0.25: it can never
be significant; the t-test can, and the per-seed DeLong p-values say whether each seed's difference is.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from scipy import stats

from model import metrics as M


def get(m: Mapping, path: Sequence[str]):
    for k in path:
        if not isinstance(m, Mapping) or k not in m:
            return None
        m = m[k]
    return m


def per_seed(runs: Sequence[Mapping], path: Sequence[str]) -> dict[int, float]:
    """{seed: value} for the seeds where the metric is defined (None/NaN left out)."""
    out = {}
    for i, m in enumerate(runs):
        v = get(m, path)
        if v is not None and np.isfinite(v):
            out[int(m.get("seed", i))] = float(v)
    return out


def mean_sd(runs: Sequence[Mapping], path: Sequence[str]) -> tuple[float, float, int]:
    """(mean, sample sd, number of seeds) of a metric over the per-seed results."""
    values = per_seed(runs, path)
    mean, sd = M.mean_sd(values.values())
    return mean, sd, len(values)


def paired_tests(runs: Sequence[Mapping], ref_runs: Sequence[Mapping], path: Sequence[str]) -> dict:
    """Paired t-test and Wilcoxon signed-rank test of row vs reference over the seeds both have."""
    a, b = per_seed(runs, path), per_seed(ref_runs, path)
    seeds = sorted(set(a) & set(b))
    diff = np.array([a[s] - b[s] for s in seeds])
    out = {"n_pairs": len(seeds), "mean_difference": float(diff.mean()) if len(diff) else None,
           "t_p": None, "wilcoxon_p": None}
    if len(diff) >= 2 and np.any(diff != 0):
        out["t_p"] = float(stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds]).pvalue) \
            if np.std(diff) > 0 else 0.0
        out["wilcoxon_p"] = float(stats.wilcoxon(diff).pvalue)
    return out
