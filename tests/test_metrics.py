"""The paper's metrics against hand-computed values, scikit-learn and DeLong's definition."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, matthews_corrcoef, roc_auc_score

from model import metrics as M


# --- AUC and its bootstrap CI --------------------------------------------------------------------
def test_auc_matches_sklearn_and_the_ci_brackets_it():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    s = y * 0.8 + rng.normal(0, 0.7, 200)
    r = M.auc_with_ci(y, s, n_bootstrap=500, seed=1)
    assert r.auc == pytest.approx(roc_auc_score(y, s))
    assert r.ci_low < r.auc < r.ci_high
    assert 0.05 < r.ci_high - r.ci_low < 0.3


def test_rank_auc_counts_ties_as_one_half():
    # pos {0.5, 0.9} vs neg {0.5, 0.1}: pairs (0.5,0.5)=1/2, (0.5,0.1)=1, (0.9,*)=1+1 -> 3.5/4
    assert M._rank_auc(np.array([1, 1, 0, 0]), np.array([0.5, 0.9, 0.5, 0.1])) == pytest.approx(0.875)


def test_bootstrap_ci_is_deterministic_for_a_seed_and_changes_with_it():
    y = np.array([0, 1] * 30)
    s = np.linspace(0, 1, 60) + (y * 0.2)
    a = M.auc_with_ci(y, s, n_bootstrap=200, seed=7)
    assert a == M.auc_with_ci(y, s, n_bootstrap=200, seed=7)
    assert a.ci != M.auc_with_ci(y, s, n_bootstrap=200, seed=8).ci


def test_auc_is_nan_when_only_one_class_is_present():
    r = M.auc_with_ci([1, 1, 1], [0.2, 0.5, 0.9])
    assert math.isnan(r.auc) and r.n_neg == 0


def test_missing_labels_are_dropped_not_counted():
    r = M.auc_with_ci([0, 1, np.nan, 1], [0.1, 0.9, 0.5, 0.8], n_bootstrap=0)
    assert (r.n_pos, r.n_neg, r.auc) == (2, 1, 1.0)


def test_non_binary_labels_are_rejected_with_the_bad_value():
    with pytest.raises(ValueError, match="2.0"):
        M.auc_with_ci([0, 1, 2], [0.1, 0.2, 0.3])


# --- DeLong ------------------------------------------------------------------------------------
def _delong_by_definition(y, a, b):
    """DeLong et al. (1988) with the O(m·n) kernel psi(x, y) = 1, 1/2, 0."""
    y = np.asarray(y)

    def comps(s):
        pos, neg = s[y == 1], s[y == 0]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        return psi.mean(), psi.mean(axis=1), psi.mean(axis=0)

    (auc_a, v10a, v01a), (auc_b, v10b, v01b) = comps(np.asarray(a)), comps(np.asarray(b))
    m, n = len(v10a), len(v01a)
    s10 = np.cov(np.vstack([v10a, v10b])); s01 = np.cov(np.vstack([v01a, v01b]))
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    return auc_a, auc_b, var


def test_delong_on_a_hand_computed_example():
    # positives first: model A scores pos (0.9, 0.6, 0.4) neg (0.7, 0.3); model B pos (0.8, 0.2, 0.65) neg (0.5, 0.7)
    # V10_A = (1, 1/2, 1/2), V01_A = (1/3, 1) -> AUC_A = 2/3; V10_B = (1, 0, 1/2), V01_B = (2/3, 1/3) -> AUC_B = 1/2
    # S10: var_A = 1/12, var_B = 1/4, cov = 1/8;  S01: var_A = 2/9, var_B = 1/18, cov = -1/9
    # Var(A - B) = (1/12 + 1/4 - 1/4)/3 + (2/9 + 1/18 + 2/9)/2 = 1/36 + 1/4 = 5/18
    y = [1, 1, 1, 0, 0]
    a = [0.9, 0.6, 0.4, 0.7, 0.3]
    b = [0.8, 0.2, 0.65, 0.5, 0.7]
    r = M.delong_test(y, a, b)
    assert r.auc_a == pytest.approx(2 / 3) and r.auc_b == pytest.approx(1 / 2)
    assert r.var_a == pytest.approx(1 / 12 / 3 + 2 / 9 / 2)  # = 5/36, single-AUC DeLong variance
    assert r.var_a == pytest.approx(M.delong_variance(y, a))
    assert r.covariance == pytest.approx(1 / 8 / 3 - 1 / 9 / 2)
    z = (1 / 6) / math.sqrt(5 / 18)
    assert r.z == pytest.approx(z)
    assert r.p_value == pytest.approx(0.751830, abs=1e-5)


def test_delong_matches_its_definition_on_tied_scores():
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 80)
    a = np.round(y * 0.6 + rng.normal(0, 0.5, 80), 1)  # rounding creates ties
    b = np.round(y * 0.3 + rng.normal(0, 0.5, 80), 1)
    auc_a, auc_b, var = _delong_by_definition(y, a, b)
    r = M.delong_test(y, a, b)
    assert (r.auc_a, r.auc_b) == (pytest.approx(auc_a), pytest.approx(auc_b))
    assert r.var_a + r.var_b - 2 * r.covariance == pytest.approx(var)
    assert r.auc_a == pytest.approx(roc_auc_score(y, a))


def test_delong_gives_p_one_for_identical_models_and_small_p_for_a_clearly_better_one():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    good = y * 2.0 + rng.normal(0, 1, 400)
    weak = y * 0.3 + rng.normal(0, 1, 400)
    assert M.delong_test(y, good, good).p_value == pytest.approx(1.0)
    assert M.delong_test(y, good, weak).p_value < 1e-6


def test_delong_refuses_unpaired_inputs():
    with pytest.raises(ValueError, match="same cases"):
        M.delong_test([0, 1, 1], [0.1, 0.9, np.nan], [0.2, 0.3, 0.4])


# --- operating points --------------------------------------------------------------------------
def test_sensitivity_and_specificity_at_one_half_count_strictly_greater():
    op = M.operating_point([1, 1, 0, 0, 0], [0.9, 0.5, 0.6, 0.2, 0.1], 0.5)
    # 0.5 is not > 0.5: one of two cancers found, one of three benign called malignant
    assert (op.sensitivity, op.specificity) == (0.5, pytest.approx(2 / 3))


def test_specificity_at_95_percent_sensitivity_keeps_every_cancer_here():
    y = [1] * 4 + [0] * 6
    s = [0.9, 0.8, 0.7, 0.3, 0.85, 0.6, 0.5, 0.2, 0.1, 0.05]
    op = M.specificity_at_sensitivity(y, s, 0.95)
    # to keep all 4 cancers the threshold drops to 0.3: benign 0.2, 0.1, 0.05 are below -> 3/6
    assert op.threshold == 0.3 and op.sensitivity == 1.0 and op.specificity == 0.5


def test_best_mcc_equals_the_brute_force_maximum_over_thresholds():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 120)
    s = np.round(y * 0.7 + rng.normal(0, 0.6, 120), 2)
    brute = max(matthews_corrcoef(y, s >= t) for t in np.unique(s))
    op = M.best_mcc(y, s)
    assert op.mcc == pytest.approx(brute)
    assert matthews_corrcoef(y, s >= op.threshold) == pytest.approx(op.mcc)


# --- multi-class and breast-wise ---------------------------------------------------------------
def test_weighted_accuracy_is_balanced_accuracy_ignoring_missing_labels():
    y = np.array([0, 0, 0, 0, 1, 2, -1])
    p = np.array([0, 0, 0, 1, 1, 0, 2])
    # recalls: class0 3/4, class1 1/1, class2 0/1 -> 0.5833
    assert M.weighted_accuracy(y, p) == pytest.approx((0.75 + 1 + 0) / 3)
    assert M.weighted_accuracy(y, p) == pytest.approx(balanced_accuracy_score(y[:-1], p[:-1]))


def test_a_breast_scores_the_max_over_its_views():
    preds = pd.DataFrame({"breast_key": ["a:L", "a:L", "b:R", "b:R"], "breastbin": [1, 1, 0, 0],
                          "p_breastbin": [0.2, 0.7, 0.6, 0.1], "density": ["B", "B", "C", None]})
    br = M.breast_level(preds).set_index("breast_key")
    assert br.loc["a:L", "p_breastbin"] == 0.7 and br.loc["b:R", "p_breastbin"] == 0.6
    assert br.loc["b:R", "density"] == "C"


def _toy_predictions(n_breasts=40, seed=0, strength=1.5):
    rng = np.random.default_rng(seed)
    rows = []
    for b in range(n_breasts):
        mal = int(b % 3 == 0)
        dens = "ABCD"[b % 4]
        for view in ("CC", "MLO"):
            logit = strength * mal + rng.normal(0, 1)
            acr_p = rng.dirichlet(np.ones(6)); dens_p = rng.dirichlet(np.ones(4))
            row = {"image_key": f"i{b}{view}", "breast_key": f"acc{b}:L", "breastbin": mal,
                   "acr": 4 if mal else 2, "density": dens, "view": view,
                   "p_breastbin": 1 / (1 + math.exp(-logit)),
                   "p_view_MLO": 0.8 if view == "MLO" else 0.3}
            row.update({f"p_acr_{k}": acr_p[k - 1] for k in range(1, 7)})
            row.update({f"p_density_{d}": dens_p[i] for i, d in enumerate("ABCD")})
            rows.append(row)
    return pd.DataFrame(rows)


def test_evaluate_predictions_reports_breast_and_image_auc_strata_and_p_values():
    preds = _toy_predictions()
    ref = _toy_predictions(seed=1, strength=3.0)
    out = M.evaluate_predictions(preds, n_bootstrap=100, seed=0, reference=ref)
    br = M.breast_level(preds)
    assert out["breastbin_auc"] == pytest.approx(roc_auc_score(br["breastbin"], br["p_breastbin"]), abs=1e-6)
    assert out["image_breastbin_auc"] == pytest.approx(roc_auc_score(preds["breastbin"], preds["p_breastbin"]), abs=1e-6)
    assert out["breastbin_auc_ci"][0] <= out["breastbin_auc"] <= out["breastbin_auc_ci"][1]
    assert out["view_auc"] == 1.0
    assert set(out["strata"]["density"]) == {"A", "B", "C", "D"} and set(out["strata"]["view"]) == {"CC", "MLO"}
    cc = preds[preds["view"] == "CC"]
    assert out["strata"]["view"]["CC"]["auc"] == pytest.approx(roc_auc_score(cc["breastbin"], cc["p_breastbin"]), abs=1e-6)
    assert 0 <= out["p_value_vs_reference"] <= 1 and out["n_breasts"] == 40
    assert out["acr_wacc"] is not None and out["n_density_labelled"] == 80
    json.dumps(out, allow_nan=False)  # evaluation.json must be strict JSON


def test_evaluation_json_keeps_the_benchmark_shape_and_the_summary_prints_it(tmp_path):
    res = M.evaluate_predictions(_toy_predictions(), n_bootstrap=50)
    path = M.write_evaluation_json(tmp_path / "evaluation.json", {"mtl": {"hmi_test": res}, "baseline": {"hmi_test": res}})
    doc = json.loads(path.read_text())
    assert doc["models"]["mtl"]["hmi_test"]["breastbin_auc_ci"] == res["breastbin_auc_ci"]
    text = M.format_summary(path)
    assert "mtl" in text and "baseline" in text and "hmi_test" in text
    assert f"{100 * res['breastbin_auc']:.1f}" in text
    assert "does not exist" in M.format_summary(tmp_path / "missing.json")


def test_mean_sd_over_runs():
    assert M.mean_sd([0.7, 0.8, None, float("nan")]) == (pytest.approx(0.75), pytest.approx(np.std([0.7, 0.8], ddof=1)))
    assert M.mean_sd([0.7]) == (0.7, 0.0)
