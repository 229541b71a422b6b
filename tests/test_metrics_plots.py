"""Evaluation plots: written as PNG, identical bytes for identical predictions, honest about missing data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model import metrics as M
from model import plots as P


def _preds(n=40, seed=0, latent=True):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    frame = pd.DataFrame({"image_key": [f"i{k:03d}" for k in range(n)], "breast_key": [f"b{k // 2}:L" for k in range(n)],
                          "breastbin": y, "view": np.where(np.arange(n) % 4 < 2, "CC", "MLO"),
                          "density": [("A", "B", "C", None)[k % 4] for k in range(n)],
                          "p_breastbin": 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(0, 1, n))))})
    if latent:
        for k in range(6):
            frame[f"z_{k}"] = rng.normal(size=n) + y
    return frame


def _png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_roc_calibration_and_confusion_plots_are_pngs_with_stable_bytes(tmp_path):
    p = _preds()
    curves = {"mtl": (p["breastbin"], p["p_breastbin"]), "baseline": (p["breastbin"], 1 - p["p_breastbin"])}
    a = P.roc_plot(curves, tmp_path / "a" / "roc.png", "ROC")
    b = P.roc_plot(curves, tmp_path / "b" / "roc.png", "ROC")
    assert _png(a) and a.read_bytes() == b.read_bytes()
    assert _png(P.calibration_plot(curves, tmp_path / "cal.png", "calibration"))
    cm = np.array([[5, 1], [2, 7]])
    assert _png(P.confusion_plot(cm, ["CC", "MLO"], tmp_path / "cm.png", "view"))


def test_tsne_draws_three_colourings_and_refuses_predictions_without_z(tmp_path):
    out = P.tsne_plot(_preds(), tmp_path / "tsne.png", "z", seed=0)
    assert _png(out)
    assert out.read_bytes() == P.tsne_plot(_preds(), tmp_path / "tsne2.png", "z", seed=0).read_bytes()
    with pytest.raises(ValueError, match="return_latent"):
        P.tsne_plot(_preds(latent=False), tmp_path / "none.png", "z")


def test_tsne_keeps_latent_columns_in_numeric_order():
    frame = pd.DataFrame(columns=["z_10", "z_2", "z_1", "zeta", "p_breastbin"])
    assert P.latent_columns(frame) == ["z_1", "z_2", "z_10"]


def test_strata_carry_their_own_paired_p_values():
    p, ref = _preds(seed=1), _preds(seed=2)
    out = M.evaluate_predictions(p, n_bootstrap=0, reference=ref)
    cc = p[p["view"] == "CC"].merge(ref[["image_key", "p_breastbin"]], on="image_key", suffixes=("", "_ref"))
    expected = M.delong_test(cc["breastbin"], cc["p_breastbin"], cc["p_breastbin_ref"]).p_value
    assert out["strata"]["view"]["CC"]["p_value_vs_reference"] == pytest.approx(expected, abs=1e-6)
    assert "p_value_vs_reference" in out["strata"]["density"]["A"]
