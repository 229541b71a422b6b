"""``mammo-mtl manifests build|validate`` work without Dagster and exit non-zero on bad data."""

from typer.testing import CliRunner

from curation.home import MammoHome
from pipelines.cli import app
from tests.manifest_inputs import synthetic_inputs, write_inputs


def test_build_then_validate_passes_and_a_bad_u_makes_validate_exit_1(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMMO_HOME", str(tmp_path))
    home = MammoHome.from_env().ensure()
    catalog, labels, index = synthetic_inputs(6)
    write_inputs(home, "hmi", catalog, labels, index)
    runner = CliRunner()

    built = runner.invoke(app, ["manifests", "build", "--seed", "1"])
    assert built.exit_code == 0, built.output
    assert (home.manifests / "cohort=hmi" / "split=train" / "part-0.parquet").is_file()
    assert runner.invoke(app, ["manifests", "validate", "--suite", "labels"]).exit_code == 0

    labels.loc[0, "u"] = -0.2
    write_inputs(home, "hmi", catalog, labels, index)
    failed = runner.invoke(app, ["manifests", "validate", "--suite", "labels"])
    assert failed.exit_code == 1 and "expect_column_values_to_be_between" in failed.output


def test_build_refuses_ratios_that_do_not_sum_to_one(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMMO_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["manifests", "build", "--train", "0.9"])
    assert result.exit_code == 2 and "must sum to 1" in result.output
