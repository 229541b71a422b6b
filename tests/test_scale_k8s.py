"""The Kubernetes sample (deploy/k8s/) is valid for Dagster without a cluster: the instance file
passes Dagster's instance schema and each configurable class's own schema (K8sRunLauncher,
QueuedRunCoordinator, PostgreSQL storage), the run configs pass the per-batch job's schema, and
the Helm values, Dockerfile and package agree on the code location."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

pytest.importorskip("dagster_k8s", reason="dagster-k8s not installed (pip install -e '.[scale]')")
pytest.importorskip("dagster_postgres", reason="dagster-postgres not installed (pip install -e '.[scale]')")

import dagster as dg  # noqa: E402
from dagster._config import process_config  # noqa: E402
from dagster._core.errors import DagsterInvalidConfigError  # noqa: E402
from dagster._core.instance.config import dagster_instance_config  # noqa: E402
from dagster._serdes import class_from_code_pointer  # noqa: E402

from pipelines.executors import batch_job  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
PG_ENV = {"DAGSTER_PG_HOST": "db", "DAGSTER_PG_USER": "dagster", "DAGSTER_PG_PASSWORD": "x", "DAGSTER_PG_DB": "dagster"}


def _load(name: str) -> dict:
    return yaml.safe_load((K8S / name).read_text())


def _check_instance(folder: Path) -> dict:
    """Dagster's own instance validation, then each pluggable class's config against its schema."""
    config, _ = dagster_instance_config(str(folder))
    from dagster_postgres import DagsterPostgresStorage

    checks = [(DagsterPostgresStorage, config["storage"]["postgres"])]
    for section in ("run_launcher", "run_coordinator"):
        entry = config[section]
        checks.append((class_from_code_pointer(entry["module"], entry["class"]), entry.get("config") or {}))
    for cls, value in checks:
        result = process_config(cls.config_type(), value)
        if not result.success:
            raise DagsterInvalidConfigError(f"{cls.__name__} config in {folder}", result.errors, value)
    return config


@pytest.fixture()
def pg_env(monkeypatch):
    for k, v in PG_ENV.items():
        monkeypatch.setenv(k, v)


def test_the_instance_file_passes_dagsters_schemas_with_the_k8s_run_launcher(pg_env):
    config = _check_instance(K8S)
    assert config["run_launcher"]["class"] == "K8sRunLauncher"
    assert config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    assert _load("values.yaml")["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"


def test_a_misspelt_run_launcher_field_is_rejected(pg_env, tmp_path):
    broken = _load("dagster.yaml")
    broken["run_launcher"]["config"]["job_namespaces"] = broken["run_launcher"]["config"].pop("job_namespace")
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(broken))
    with pytest.raises(DagsterInvalidConfigError, match="K8sRunLauncher"):
        _check_instance(tmp_path)


@pytest.mark.parametrize("name", ["run_config_k8s_executor.yaml", "run_config_dask.yaml"])
def test_the_sample_run_configs_are_valid_for_the_batch_job(name):
    assert dg.validate_run_config(batch_job(), _load(name))


def test_an_unknown_executor_in_run_config_is_rejected():
    with pytest.raises(DagsterInvalidConfigError, match="celery"):
        dg.validate_run_config(batch_job(), {"execution": {"config": {"celery": {}}}})


def test_helm_values_dockerfile_and_package_name_the_same_code_location():
    module = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dagster"]["module_name"]
    values = _load("values.yaml")
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", module]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    dockerfile = (K8S / "Dockerfile").read_text()
    assert f'"-m", "{module}"' in dockerfile and f'"-p", "{deployment["port"]}"' in dockerfile
    packages = {p.rstrip("*") for p in
                tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\w+) ", dockerfile, flags=re.M))
    assert packages <= copied, f"Dockerfile does not copy {sorted(packages - copied)}"
    assert ".[scale]" in dockerfile
