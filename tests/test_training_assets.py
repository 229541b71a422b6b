"""Training, evaluation and the retrain sensor as Dagster assets, on a tiny synthetic cohort.

The asset graph runs through real Dagster Pipes subprocesses; most tests swap TensorFlow for
``tests.fake_training_job`` (seconds instead of minutes), and one (``slow``) trains the real network
at 64x64 for one epoch — what a scientist launching from the UI gets, at toy size.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from curation.home import MammoHome
from curation.manifests import read_manifest, write_manifests
from model.synthetic import write_synthetic_cache
from pipelines.resources import MammoHomeResource

from assets import evaluation as E
from assets import training as T

TINY = {"height": 64, "width": 64, "epochs": 1, "batch_size": 8}
ROOT = Path(__file__).resolve().parents[1]


class FakeModelPipes(dg.PipesSubprocessClient):
    """The pipes resource, launching ``tests.fake_training_job`` instead of ``model.training_job``."""

    def run(self, *, context, command, extras=None, env=None, cwd=None):
        assert list(command[1:3]) == ["-m", "model.training_job"]
        return super().run(context=context, command=[sys.executable, "-m", "tests.fake_training_job", *command[3:]],
                           extras=extras, env=env, cwd=str(ROOT))


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMMO_HOME", str(tmp_path / "home"))
    home = MammoHome.from_env().ensure()
    parts = []
    for (cohort, split), n, seed in ((("hmi", "train"), 24, 1), (("hmi", "test"), 16, 2),
                                     (("inb", "test"), 12, 3), (("vtb", "finetune"), 16, 4)):
        rows = write_synthetic_cache(home.cache, n, 64, 64, seed=seed)
        rows["image_key"] = cohort + split + rows["image_key"]
        # one view per breast (the synthetic images alternate benign/malignant within a breast)
        rows["breast_key"] = rows["image_key"] + ":L"
        rows["cohort"], rows["split"] = cohort, split
        rows["vendor"], rows["density_stratum"], rows["view_stratum"] = "GE", rows["density"], rows["view"]
        rows["schema_version"] = "1.0"
        for t in ("breastbin", "acr", "density", "view"):
            rows[f"{t}_u"] = rows[f"{t}_u"].fillna(1.0)
        if cohort == "vtb":  # vtb: malignancy mostly unknown, ACR known (the fine-tuning situation)
            rows["breastbin"] = pd.array([None] * len(rows), dtype="Int64")
            rows["breastbin_weight"], rows["breastbin_u"], rows["breastbin_source"] = 0.0, 1.0, None
        parts.append(rows)
    write_manifests(pd.concat(parts, ignore_index=True), home.manifests)
    assert len(read_manifest(home, "vtb", "finetune")) == 16
    return home


def _resources(home, real_model: bool = False):
    return {"mammo": MammoHomeResource(root=str(home.root)),
            "pipes": dg.PipesSubprocessClient() if real_model else FakeModelPipes()}


@pytest.mark.slow
def test_the_real_network_trains_in_a_pipes_subprocess_and_predicts_both_test_sets(home):
    result = dg.materialize([T.mtl_model], resources=_resources(home, real_model=True),
                            run_config=dg.RunConfig(ops={"mtl_model": T.MTLTrainingConfig(**TINY)}))
    assert result.success
    run = pd.read_parquet(home.models / "runs.parquet").iloc[0]
    assert run["role"] == "mtl" and Path(run["model_path"]).is_file() and run["model_path"].endswith(".keras")
    preds = pd.read_parquet(home.models / run["run_id"] / "predictions" / "inb.parquet")
    assert len(preds) == 12 and preds["p_breastbin"].between(0, 1).all()
    assert len([c for c in preds.columns if c.startswith("z_")]) == 496     # latent z kept for the t-SNE
    md = result.asset_materializations_for_node("mtl_model")[0].metadata
    assert md["mtl/train_seconds"].value > 0 and 0 <= md["mtl/inb/breastbin_auc"].value <= 1


def test_training_assets_run_in_a_pipes_subprocess_and_evaluation_writes_the_benchmark_json(home):
    run_config = dg.RunConfig(ops={
        "mtl_model": T.MTLTrainingConfig(**TINY),
        "baseline_models": T.BaselineTrainingConfig(**{**TINY, "height": 128}, ensemble_size=2, mc_passes=2),
        "finetuned_model": T.FinetuneConfig(epochs=1, u_const=0.5),
        "evaluation": E.EvaluationConfig(n_bootstrap=50),
    })
    result = dg.materialize([T.mtl_model, T.baseline_models, T.finetuned_model, E.evaluation],
                            resources=_resources(home), run_config=run_config)
    assert result.success

    runs = pd.read_parquet(home.models / "runs.parquet")
    assert sorted(runs["role"]) == ["baseline", "ensemble", "finetuned", "mc_dropout", "mtl"]
    assert runs["manifest_hash"].str.len().min() == 16 and runs["config_hash"].notna().all()
    mtl = runs[runs["role"] == "mtl"].iloc[0]
    assert mtl["model_path"].endswith("model.keras") and Path(mtl["model_path"]).exists()
    ens = runs[runs["role"] == "ensemble"].iloc[0]
    base = runs[runs["role"] == "baseline"].iloc[0]
    assert len(json.loads(ens["train_keys"])) == 2 and json.loads(ens["train_keys"])[0] == json.loads(base["train_keys"])[0]
    ft = json.loads(runs[runs["role"] == "finetuned"].iloc[0]["spec"])
    assert ft["labels"]["acr_derived_u"] == 0.5 and ft["class_weights"]["acr"][3] == 20.0

    md = result.asset_materializations_for_node("mtl_model")[0].metadata
    assert {"mtl/model_path", "mtl/manifest_hash", "mtl/config_hash", "mtl/hmi_test/breastbin_auc"} <= set(md)

    doc = json.loads(home.evaluation_json.read_text())
    for role in ("mtl", "baseline", "ensemble", "mc_dropout", "finetuned"):
        for ds in ("hmi_test", "inb"):
            m = doc["models"][role][ds]
            assert 0.0 <= m["breastbin_auc"] <= 1.0 and len(m["breastbin_auc_ci"]) == 2
    assert doc["models"]["baseline"]["hmi_test"]["p_value_vs_reference"] is not None
    assert "MTL breast AUC" in doc["verdict"]
    finetune_model = json.loads(Path(runs[runs["role"] == "finetuned"].iloc[0]["model_path"]).read_text())
    assert finetune_model["init"] == mtl["model_path"]          # fine-tuned from the MTL model
    assert (home.reports / "plots" / "roc_hmi_test.png").is_file()
    assert (home.reports / "plots" / "tsne_inb.png").is_file()
    eval_md = result.asset_materializations_for_node("evaluation")[0].metadata
    assert "data:image/png;base64" in eval_md["roc_and_tsne"].value

    # nothing changed: a second materialisation reuses the model instead of retraining it
    again = dg.materialize([T.mtl_model], resources=_resources(home),
                           run_config=dg.RunConfig(ops={"mtl_model": T.MTLTrainingConfig(**TINY)}))
    assert again.success
    runs2 = pd.read_parquet(home.models / "runs.parquet")
    assert (runs2["role"] == "mtl").sum() == 2 and runs2[runs2["role"] == "mtl"]["run_id"].nunique() == 1


def test_a_bad_run_config_fails_before_any_process_starts_naming_the_field(home):
    result = dg.materialize([T.mtl_model], resources=_resources(home), raise_on_error=False,
                            run_config=dg.RunConfig(ops={"mtl_model": T.MTLTrainingConfig(**{**TINY, "height": 100})}))
    assert not result.success
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"][0]
    assert "height=100" in str(failure.event_specific_data.error)
    assert not (home.models / "runs.parquet").exists()
    bad_task = dg.materialize([T.mtl_model], resources=_resources(home), raise_on_error=False,
                              run_config=dg.RunConfig(ops={"mtl_model": T.MTLTrainingConfig(**TINY, tasks=["birads"])}))
    assert not bad_task.success


def test_finetuning_without_an_mtl_model_says_what_to_materialise(home):
    result = dg.materialize([T.finetuned_model], resources=_resources(home), raise_on_error=False)
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"][0]
    assert "materialise mtl_model first" in str(failure.event_specific_data.error)


# --- the retrain sensor --------------------------------------------------------------------------
def _adjudications(home, n):
    pd.DataFrame({"decision_id": [f"d{i}" for i in range(n)], "target_key": [f"k{i}" for i in range(n)],
                  "decision": ["confirm"] * n}).to_parquet(home.labels / "adjudications.parquet", index=False)


def test_the_sensor_requests_a_retrain_only_when_enough_new_adjudications_arrived(home, monkeypatch):
    monkeypatch.setenv(E.RETRAIN_THRESHOLD_ENV, "10")
    res = {"mammo": MammoHomeResource(root=str(home.root))}
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, resources=res)
        assert isinstance(E.adjudication_retrain_sensor(ctx), dg.SkipReason)      # no file yet
        _adjudications(home, 9)
        assert isinstance(E.adjudication_retrain_sensor(ctx), dg.SkipReason)
        _adjudications(home, 12)
        req = E.adjudication_retrain_sensor(ctx)
        assert isinstance(req, dg.RunRequest) and req.run_key == "adjudications-12" and ctx.cursor == "12"
        ctx2 = dg.build_sensor_context(instance=instance, resources=res, cursor="12")
        _adjudications(home, 20)
        assert isinstance(E.adjudication_retrain_sensor(ctx2), dg.SkipReason)     # 8 new < 10
        _adjudications(home, 3)
        skip = E.adjudication_retrain_sensor(ctx2)
        assert "shrank" in skip.skip_message and ctx2.cursor == "3"


def test_a_bad_threshold_is_reported_with_the_variable_name(monkeypatch):
    monkeypatch.setenv(E.RETRAIN_THRESHOLD_ENV, "many")
    with pytest.raises(ValueError, match=E.RETRAIN_THRESHOLD_ENV):
        E.retrain_threshold()


def test_each_experiment_has_a_job_with_its_run_config_in_the_launchpad():
    from pipelines.resources import default_resources

    @dg.asset(name="split_manifests")
    def manifests_stand_in():
        """Stands in for the manifests area's asset: this test checks this area's definitions alone."""

    defs = dg.Definitions.merge(T.defs, E.defs, dg.Definitions(assets=[manifests_stand_in],
                                                               resources=default_resources()))
    presets = {j.name: j.config["ops"]["experiment_tables"]["config"] for j in E.experiment_jobs}
    for key in ("2_3", "4", "5", "6_7", "8_9"):
        assert defs.resolve_job_def(f"experiment_table_{key}") is not None
        assert presets[f"experiment_table_{key}"] == {"tables": [key], "budget": "small"}
    assert defs.resolve_job_def("retrain_on_new_labels") is not None
    assert defs.resolve_sensor_def("adjudication_retrain_sensor").default_status == dg.DefaultSensorStatus.STOPPED
    assert T.mtl_model.op.pool == "training" and T.mtl_model.op.retry_policy.max_retries == 1
