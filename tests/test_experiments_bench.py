"""The bench protocol, seed aggregation, per-run evaluations and "one training at a time" — with the
fake executor, so nothing here needs TensorFlow."""

from __future__ import annotations

import fcntl
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from model import experiments as X
from model import metrics as M
from model.experiments import seeds as S
from model.report_tables import Grid, render

from tests.fake_training_job import FakeExecutor
from tests.test_metrics_experiments import manifest_rows


@pytest.fixture()
def manifests():
    return {("hmi", "train"): manifest_rows(30, "hmi", 1), ("hmi", "test"): manifest_rows(24, "hmt", 2),
            ("inb", "test"): manifest_rows(20, "inb", 3), ("vtb", "finetune"): manifest_rows(30, "vtb", 4)}


def test_the_bench_protocol_has_every_arm_the_issue_names_at_three_seeds():
    b = X.budget("bench")
    assert b.seeds >= 3 and b.ensemble_size == 5 and b.mc_passes == 10
    names = {k: [r.name for r in X.EXPERIMENTS[k].runs] for k in X.BENCH_PROTOCOL}
    assert names["bench_2"] == ["MTL", "Baseline", "Ensemble", "MC-drop"]
    assert len(names["bench_4"]) == 6 and "breastbin + view" in names["bench_4"]
    assert [r.labels.keep_fraction for r in X.EXPERIMENTS["bench_5"].runs] == [1.0, 0.75, 0.5, 0.25]
    assert [r.labels.acr_derived_u for r in X.EXPERIMENTS["bench_8_9"].runs[1:]] == [0.0, 0.9]
    arms = {r.name: r for r in X.EXPERIMENTS["all_data"].runs}
    assert all(r.labels.confirmed_only and r.labels.keep_fraction == 0.25 for r in arms.values())
    assert arms["single-task, ACR-derived u=0"].labels.acr_derived_u == 0.0
    assert arms["MTL, ACR-derived u=0.5"].labels.acr_derived_u == 0.5


def test_table_means_and_sds_are_computed_from_the_per_seed_results(tmp_path, manifests):
    b = X.budget("bench").model_copy(update={"n_bootstrap": 0})
    written = X.run_experiments(tmp_path / "models", tmp_path / "tables", manifests, FakeExecutor(), ["bench_2"], b,
                                log=lambda m: None)
    per_seed = json.loads(next(p for p in written["bench_2"] if p.name.startswith("seed_results")).read_text())
    table = pd.read_parquet(tmp_path / "tables" / "table_B2.parquet")
    for arm in ("MTL", "Baseline", "Ensemble"):
        aucs = [m["breastbin_auc"] for m in per_seed[arm]["hmi_test"]]
        assert [m["seed"] for m in per_seed[arm]["hmi_test"]] == [0, 1, 2]
        cell = table[(table["row"] == arm) & (table["column"] == "hmi test: AUC mean ± sd")].iloc[0]
        assert cell["value"] == pytest.approx(np.mean(aucs)) and cell["sd"] == pytest.approx(np.std(aucs, ddof=1))
        assert cell["n_runs"] == 3
    assert np.std([m["breastbin_auc"] for m in per_seed["Baseline"]["hmi_test"]]) > 0  # seeds really differ
    # the across-seed test pairs the per-seed AUCs by seed
    base = [m["breastbin_auc"] for m in per_seed["Baseline"]["hmi_test"]]
    mtl = [m["breastbin_auc"] for m in per_seed["MTL"]["hmi_test"]]
    test = table[(table["row"] == "Baseline") & (table["column"] == "hmi test: Δ AUC, paired t p, Wilcoxon p")].iloc[0]
    assert test["value"] == pytest.approx(np.mean(np.subtract(base, mtl)))
    assert test["p_value"] == pytest.approx(stats.ttest_rel(base, mtl).pvalue)
    delong = table[(table["row"] == "Baseline") & (table["column"] == "hmi test: per-seed DeLong p")].iloc[0]
    assert delong["cell"].count(",") == 2  # one DeLong p per seed


def test_mean_sd_skips_undefined_seeds_and_the_paired_tests_pair_by_seed():
    runs = [{"seed": 0, "breastbin_auc": 0.7}, {"seed": 1, "breastbin_auc": None}, {"seed": 2, "breastbin_auc": 0.9}]
    ref = [{"seed": 2, "breastbin_auc": 0.8}, {"seed": 0, "breastbin_auc": 0.6}]
    mean, sd, n = S.mean_sd(runs, ("breastbin_auc",))
    assert (mean, n) == (pytest.approx(0.8), 2) and sd == pytest.approx(np.std([0.7, 0.9], ddof=1))
    t = S.paired_tests(runs, ref, ("breastbin_auc",))
    assert t["n_pairs"] == 2 and t["mean_difference"] == pytest.approx(0.1)


def test_one_seed_asks_for_no_ensemble():
    from assets.training import BaselineTrainingConfig

    assert [s.name for s in BaselineTrainingConfig(ensemble_size=1).specs()] == ["baseline", "mc_dropout"]
    assert "ensemble" in [s.name for s in BaselineTrainingConfig(ensemble_size=3).specs()]
    b = X.budget("small").model_copy(update={"ensemble_size": 1})
    ens = X.RunSpec(name="Ensembles", role="ensemble", tasks=("breastbin",), architecture="single_task")
    assert len(X.expand(ens, b, 0, {"Ensembles": ens}, {}).members) == 1


def test_a_table_at_ensemble_size_one_has_no_ensemble_row_repeating_the_baseline(tmp_path, manifests):
    b = X.budget("bench").model_copy(update={"n_bootstrap": 0, "seeds": 1, "ensemble_size": 1})
    said = []
    written = X.run_experiments(tmp_path / "models", tmp_path / "tables", manifests, FakeExecutor(), ["bench_2"], b,
                                log=said.append)
    per_seed = json.loads(next(p for p in written["bench_2"] if p.name.startswith("seed_results")).read_text())
    assert "Ensemble" not in per_seed and {"MTL", "Baseline"} <= set(per_seed)
    assert "Ensemble" not in set(pd.read_parquet(tmp_path / "tables" / "table_B2.parquet")["row"])
    assert any("ensemble row is left out" in m for m in said)


def test_a_task_with_one_class_is_named_in_a_warning():
    preds = manifest_rows(4, "hmi").assign(view="MLO", p_view_MLO=0.9, p_breastbin=0.5)
    assert "view" in M.degenerate_tasks(preds) and "MLO" in M.degenerate_tasks(preds)["view"]
    assert "breastbin" not in M.degenerate_tasks(preds)


def _preds(seed: int) -> pd.DataFrame:
    rows = manifest_rows(20, "hmt", 2)
    rng = np.random.default_rng(seed)
    return rows.assign(p_breastbin=rows["breastbin"] * 0.5 + rng.random(len(rows)) * 0.6, p_view_MLO=0.9,
                       view="MLO")  # all MLO: a degenerate view task


def test_every_run_keeps_its_own_evaluation_and_evaluation_json_reports_the_latest(tmp_path):
    models, reports = tmp_path / "models", tmp_path / "reports"
    for i, run_id in enumerate(["eval-seed0", "eval-seed1"]):
        (models / run_id / "predictions").mkdir(parents=True)
        _preds(i).to_parquet(models / run_id / "predictions" / "hmi_test.parquet")
        X.append_runs(models, [{"run_id": run_id, "role": "mtl", "name": "mtl", "seed": i,
                                "created_at": f"2026-01-0{i + 1}T00:00:00+00:00"}])
    doc, _ = X.evaluate_runs(models, reports, n_bootstrap=0, tsne=False, log=lambda m: None)
    assert doc["models"]["mtl"]["hmi_test"]["run_id"] == "eval-seed1"
    index = pd.read_parquet(reports / "runs" / "index.parquet")
    assert index["run_id"].tolist() == ["eval-seed0", "eval-seed1"]
    for i, run_id in enumerate(index["run_id"]):
        kept = json.loads((reports / "runs" / run_id / "evaluation.json").read_text())
        expected = M.evaluate_predictions(_preds(i), n_bootstrap=0)["breastbin_auc"]
        assert kept["datasets"]["hmi_test"]["breastbin_auc"] == expected and kept["seed"] == i
    assert any("view" in w and "MLO" in w for w in doc["warnings"])
    assert json.loads((reports / "evaluation.json").read_text())["warnings"] == doc["warnings"]


def test_a_second_training_waits_for_the_lock_the_first_holds(tmp_path):
    from assets.training import LOCK_FILE, one_training_at_a_time
    from curation.home import MammoHome

    home = MammoHome.from_env(tmp_path).ensure()
    with one_training_at_a_time(home):
        with open(home.models / LOCK_FILE) as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(home.models / LOCK_FILE) as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released: free again


def test_the_one_renderer_writes_markdown_and_text():
    grid = Grid(["model", "data", "AUC"], [["mtl", "hmi_test", "83.8"]], title="T", notes=["note"])
    md = render(grid, "markdown")
    assert "| model | data | AUC |" in md and "| mtl | hmi_test | 83.8 |" in md and md.startswith("### T")
    text = render(grid, "text")
    assert "mtl" in text and "|" not in text and "note" in text


def test_a_budget_passes_mixed_precision_and_xla_to_the_training_config_and_cpu_budgets_keep_their_keys():
    from model.config import TrainConfig

    spec = X.RunSpec(name="MTL")
    gpu = X.budget("bench").model_copy(update={"mixed_precision": "on", "jit_compile": "on"})
    cfg = TrainConfig.model_validate(X.train_config_for(spec, gpu, 0))
    assert cfg.mixed_precision is True and cfg.jit_compile is True
    cpu = X.train_config_for(spec, X.budget("bench"), 0)
    assert "mixed_precision" not in cpu and "jit_compile" not in cpu  # same key as before the fields existed
    assert X.budget("paper").mixed_precision == "auto" and X.budget("paper").jit_compile == "auto"
