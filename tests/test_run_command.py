"""``mammo-mtl run``: a new user's cohort (here: each importer's fixture) is registered as a partition and
materialised headless with run config, and the cross-batch selection fits the cohorts present."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from curation.importers import importers
from pipelines.commands.run import batch_run_config, downstream_keys, downstream_run_config

from tests import test_importers as fx

ALL = ["adjudications", "baseline_models", "dataset_card", "evaluation", "experiment_tables", "finetuned_model",
       "mtl_model", "review_queue", "split_manifests"]


def test_without_a_vtb_cohort_no_fine_tuning_is_selected():
    assert "finetuned_model" not in downstream_keys(ALL, {"hmi", "inb"})
    assert "finetuned_model" in downstream_keys(ALL, {"hmi", "vtb"})


def test_experiment_tables_are_opt_in_and_no_train_keeps_only_curation():
    assert "experiment_tables" not in downstream_keys(ALL, {"hmi"})
    assert "experiment_tables" in downstream_keys(ALL, {"hmi"}, experiments=True)
    assert downstream_keys(ALL, {"hmi", "vtb"}, train=False) == ["adjudications", "dataset_card", "review_queue",
                                                                 "split_manifests"]


def test_run_config_carries_height_workers_and_epochs_to_the_assets_that_take_them():
    b = batch_run_config(96, 3)["ops"]
    assert b["preprocessed_images"]["config"]["height"] == 96 and b["ingest_batch"]["config"]["workers"] == 3
    d = downstream_run_config(96, 128, 2)["ops"]
    assert d["mtl_model"]["config"] == {"height": 96, "width": 128, "epochs": 2}
    assert d["finetuned_model"]["config"] == {"epochs": 2}


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMMO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
    return tmp_path / "home"


FIXTURES = {"mini-mias": fx.mias_fixture, "cbis-ddsm": fx.cbis_fixture, "vindr-mammo": fx.vindr_fixture,
            "inbreast": fx.inbreast_fixture, "cdd-cesm": fx.cesm_fixture, "embed": fx.embed_fixture}


@pytest.mark.slow  # six batch runs, ~15 s each on a loaded 2-core machine
def test_every_importers_cohort_runs_through_the_dagster_graph_headless_with_run_config(home, tmp_path):
    import dagster as dg

    batches = {}
    for fmt, make in FIXTURES.items():
        batch = fmt.replace("-", "")
        make(tmp_path / "src" / fmt)
        importers()[fmt](tmp_path / "src" / fmt, home / "cohorts" / batch)
        batches[batch] = fmt
    # a fresh process, as a user runs it: the multiprocess executor and Dagster's log capture must not share
    # pytest's captured streams
    result = subprocess.run([sys.executable, "-c", "from pipelines.cli import app; app()", "run", *batches,
                             "--height", "64", "--batch-only"], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "MAMMO_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")})
    assert result.returncode == 0, result.stdout + result.stderr
    instance = dg.DagsterInstance.get()
    assert set(instance.get_dynamic_partitions("batch")) == set(batches)
    for batch in batches:
        index = pd.read_parquet(home / "cache" / batch / "index.parquet")
        assert len(index) > 0 and set(index["height"]) == {64}  # the run config reached preprocessing
        labels = pd.read_parquet(home / "labels" / batch / "breast_labels.parquet")
        assert labels["label"].notna().any()
    quarantined = pd.read_parquet(home / "catalog" / "minimias" / "quarantine.parquet")
    assert len(quarantined) == 0


def test_an_unknown_batch_fails_naming_the_batches_present(home):
    from pipelines.cli import app
    (home / "cohorts" / "mine" / "dicom").mkdir(parents=True)
    result = CliRunner().invoke(app, ["run", "nope"])
    assert result.exit_code == 2 and "mine" in result.output
