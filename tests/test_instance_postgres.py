"""The Dagster instance on PostgreSQL: ``instance-init`` writes storage that names the URL's
environment variable (never the password), the per-batch job and a sensor tick run with run, event
and schedule storage on a throw-away PostgreSQL server on 127.0.0.1, and a fresh instance reads
the run, the materialisations, the dynamic partitions and the tick back from the server."""

from __future__ import annotations

import shutil

import pytest
import yaml
from typer.testing import CliRunner

from curation.home import MammoHome
from pipelines.instance import PG_URL_ENV, InstanceConfigError, check_postgres_url, ensure_instance, storage_kind
from pipelines.local_services import postgres_unavailable, throwaway_postgres

pytestmark = pytest.mark.skipif(postgres_unavailable() is not None, reason=postgres_unavailable() or "")

BATCH, NEW_BATCH = "hmi", "hmi__2027-01"


@pytest.fixture(scope="module")
def pg_url():
    with throwaway_postgres() as url:
        yield url


@pytest.fixture(scope="module")
def on_postgres(pg_url, tmp_path_factory):
    """One demo batch run in-process on the PostgreSQL instance, then a sensor tick for a new folder."""
    import dagster as dg

    from pipelines.scale_check import make_demo_batch, run_in_process

    home = MammoHome(tmp_path_factory.mktemp("home")).ensure()
    make_demo_batch(home, BATCH, patients=3, height=256)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MAMMO_HOME", str(home.root))
        mp.setenv("DAGSTER_HOME", str(home.dagster))
        mp.setenv(PG_URL_ENV, pg_url)
        dagster_home = ensure_instance(home)
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            storages = {type(s).__name__ for s in (instance.run_storage, instance.event_log_storage,
                                                    instance.schedule_storage)}
            result = run_in_process(home, BATCH, instance)
            shutil.copytree(home.batch_root(BATCH), home.batch_root(NEW_BATCH))
            tick = _sensor_tick(instance)
        with dg.DagsterInstance.from_config(str(dagster_home)) as fresh:   # new connections: read back
            readback = _read_back(fresh)
    return {"home": home, "dagster_home": dagster_home, "storages": storages, "result": result,
            "tick": tick, **readback}


def _sensor_tick(instance):
    """One evaluation of new_batch_sensor by the sensor daemon's own code, on this instance."""
    import logging

    from dagster._core.definitions.sensor_definition import SensorType  # noqa: F401
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
    from dagster._daemon.sensor import execute_sensor_iteration

    origin = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="pipelines.definitions", attribute="defs"),
                                         location_name="mammo_mtl")
    with create_test_daemon_workspace_context(InProcessWorkspaceLoadTarget([origin]), instance) as context:
        location = next(iter(context.create_request_context().get_code_location_entries().values())).code_location
        repo = next(iter(location.get_repositories().values()))
        sensor = repo.get_sensor("new_batch_sensor")
        instance.start_sensor(sensor)
        list(execute_sensor_iteration(context, logging.getLogger("sensor-test"), None, None))
        return sensor.get_remote_origin_id(), sensor.selector_id


def _read_back(instance) -> dict:
    import dagster as dg

    from pipelines.partitions import batch_partitions

    runs = instance.get_runs()
    materialised = {}
    for key in ("dicom_catalog", "quarantine", "preprocessed_images", "image_labels"):
        event = instance.get_latest_materialization_event(dg.AssetKey(key))
        materialised[key] = event.dagster_event.partition if event else None
    return {"runs": [(r.job_name, r.tags.get("dagster/partition"), r.status.value) for r in runs],
            "materialised": materialised,
            "partitions": sorted(instance.get_dynamic_partitions(batch_partitions.name)),
            "instance_storages": type(instance.run_storage).__name__}


def test_the_instance_names_the_url_variable_and_never_the_password(on_postgres, pg_url):
    text = (on_postgres["dagster_home"] / "dagster.yaml").read_text()
    assert yaml.safe_load(text)["storage"] == {"postgres": {"postgres_url": {"env": PG_URL_ENV}}}
    assert pg_url not in text and "127.0.0.1" not in text
    assert storage_kind(on_postgres["dagster_home"]) == "postgres"


def test_run_event_and_schedule_storage_are_all_postgres(on_postgres):
    assert on_postgres["storages"] == {"PostgresRunStorage", "PostgresEventLogStorage", "PostgresScheduleStorage"}


def test_the_batch_run_and_its_materialisations_read_back_from_postgres(on_postgres):
    from pipelines.scale_check import failure_messages

    assert on_postgres["result"].success, failure_messages(on_postgres["result"])
    assert ("batch_pipeline", BATCH, "SUCCESS") in on_postgres["runs"]
    assert set(on_postgres["materialised"].values()) == {BATCH}


def test_a_sensor_tick_stored_on_postgres_requested_the_new_batch(on_postgres, pg_url):
    import dagster as dg
    from dagster._core.scheduler.instigation import TickStatus

    assert on_postgres["partitions"] == [BATCH, NEW_BATCH]
    assert ("batch_pipeline", NEW_BATCH, "QUEUED") in on_postgres["runs"]
    origin_id, selector_id = on_postgres["tick"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PG_URL_ENV, pg_url)
        with dg.DagsterInstance.from_config(str(on_postgres["dagster_home"])) as fresh:
            ticks = fresh.get_ticks(origin_id, selector_id)
    assert [t.status for t in ticks] == [TickStatus.SUCCESS]
    assert len(ticks[0].run_ids) == 1


def test_a_managed_file_on_postgres_stays_on_postgres_without_the_variable(on_postgres, monkeypatch):
    monkeypatch.delenv(PG_URL_ENV, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(on_postgres["dagster_home"]))
    ensure_instance(on_postgres["home"])
    assert storage_kind(on_postgres["dagster_home"]) == "postgres"


def test_instance_init_writes_an_explicit_url_with_the_driver_and_private_mode(tmp_path, monkeypatch):
    from pipelines.cli import app

    monkeypatch.setenv("MAMMO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.delenv(PG_URL_ENV, raising=False)
    out = CliRunner().invoke(app, ["instance-init", "--postgres-url", "postgresql://u:secret@db.example:5432/dagster"])
    assert out.exit_code == 0, out.output
    assert "storage: postgres" in out.output
    config = tmp_path / "dagster" / "dagster.yaml"
    assert yaml.safe_load(config.read_text())["storage"]["postgres"]["postgres_url"] == \
        "postgresql+psycopg2://u:secret@db.example:5432/dagster"
    assert config.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("url, field", [("mysql://u@h/db", "scheme"), ("postgresql://u@h", "database"),
                                        ("postgresql:///db", "host")])
def test_a_bad_postgres_url_fails_naming_the_option(url, field):
    with pytest.raises(InstanceConfigError, match=f"--postgres-url: .*{field}"):
        check_postgres_url(url)


def test_a_bare_postgresql_scheme_in_the_variable_is_refused_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setenv(PG_URL_ENV, "postgresql://u@db.example/dagster")
    with pytest.raises(InstanceConfigError, match=r"postgresql\+psycopg2"):
        ensure_instance(MammoHome(tmp_path / "home").ensure())
