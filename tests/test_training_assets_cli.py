"""``mammo-mtl experiments`` and ``mammo-mtl evaluate`` (the model swapped for the fake executor)."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from curation.home import MammoHome
from curation.manifests import write_manifests
from pipelines.cli import app
from tests.fake_training_job import FakeExecutor
from tests.test_metrics_experiments import manifest_rows


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMMO_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("model.training_job.ModelExecutor", FakeExecutor)
    return MammoHome.from_env().ensure()


def _write(home, parts):
    frames = []
    for (cohort, split), rows in parts.items():
        rows = rows.assign(cohort=cohort, split=split, vendor="GE", density_stratum=rows["density"],
                           view_stratum=rows["view"], schema_version="1.0")
        frames.append(rows)
    write_manifests(pd.concat(frames, ignore_index=True), home.manifests)


def test_experiments_writes_the_requested_table_and_prints_it(home):
    _write(home, {("hmi", "train"): manifest_rows(20, "hmi", 1), ("hmi", "test"): manifest_rows(16, "hmt", 2),
                  ("inb", "test"): manifest_rows(12, "inb", 3)})
    result = CliRunner().invoke(app, ["experiments", "--table", "6", "--budget", "small"])
    assert result.exit_code == 0, result.output
    assert "Table 6" in result.output and "Table 7" in result.output
    assert (home.reports / "tables" / "table_7.parquet").is_file()


def test_experiments_without_manifests_says_what_to_run(home):
    result = CliRunner().invoke(app, ["experiments", "--all", "--budget", "small"])
    assert result.exit_code == 1 and "split_manifests" in result.output


def test_experiments_rejects_an_unknown_table_or_budget(home):
    assert "table '12'" in CliRunner().invoke(app, ["experiments", "-t", "12", "--budget", "small"]).output
    assert "budget='huge'" in CliRunner().invoke(app, ["experiments", "--all", "--budget", "huge"]).output
    assert CliRunner().invoke(app, ["experiments", "--budget", "small"]).exit_code != 0


def test_evaluate_before_any_training_names_the_asset_to_materialise(home):
    result = CliRunner().invoke(app, ["evaluate"])
    assert result.exit_code == 1 and "mtl_model" in result.output
