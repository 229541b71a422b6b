"""The review assets, the decisions sensor and the ``mammo-mtl review`` commands."""

import json

import dagster as dg
import pandas as pd
import pytest
from typer.testing import CliRunner

from assets.review import adjudication_problems, adjudications, review_decisions_sensor, review_queue
from curation.pseudonym import DEMO_KEY
from pipelines.cli import app as cli
from pipelines.resources import default_resources
from review_app import accounts
from review_app.decisions import DecisionRequest, record_decision
from review_app.export import ADJUDICATION_COLUMNS
from review_app.sample import build_sample_home
from review_app.settings import DB_ENV_VAR
from review_app.storage import QueueItem, User, init_db, make_engine

KEY = DEMO_KEY.encode()


@pytest.fixture()
def home(tmp_path, monkeypatch, cheap_argon2):
    monkeypatch.delenv(DB_ENV_VAR, raising=False)
    monkeypatch.delenv("MAMMO_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("MAMMO_HOME", str(tmp_path / "home"))
    return build_sample_home(tmp_path / "home", KEY)


def materialise(asset, home, **config):
    run_config = {"ops": {asset.op.name: {"config": config}}} if config else None
    return dg.materialize([asset], resources=default_resources(str(home.root)),
                          run_config=run_config)


def test_review_queue_asset_writes_the_queue_and_loads_it_into_the_app(home):
    result = materialise(review_queue, home)
    assert result.success
    queue = pd.read_parquet(home.labels / "review_queue.parquet")
    # the left breast's two tasks together (its pathology conflict is the most urgent), then the right's
    assert list(queue["task"]) == ["breastbin", "density", "acr"]
    meta = result.asset_materializations_for_node("review_queue")[0].metadata
    assert meta["dagster/row_count"].value == 3 and meta["app_added"].value == 3
    # a rebuild with a stricter threshold deactivates what is no longer flagged, adds nothing
    again = materialise(review_queue, home, u_threshold=0.65)
    meta = again.asset_materializations_for_node("review_queue")[0].metadata
    assert (meta["dagster/row_count"].value, meta["app_added"].value, meta["app_no_longer_flagged"].value) == (2, 0, 1)


def test_adjudications_asset_exports_decisions_and_checks_them(home):
    materialise(review_queue, home)
    factory = init_db(make_engine(f"sqlite:///{home.review_db}"))
    with factory() as session:
        user = accounts.create_user(session, "alice", "alice-password")
        session.commit()
        items = {i.task: i.id for i in session.query(QueueItem)}
    record_decision(factory, user, DecisionRequest(items["acr"], "correct", 0, "1" * 32, "4"))
    record_decision(factory, user, DecisionRequest(items["density"], "skip", 0, "2" * 32))
    result = materialise(adjudications, home)
    assert result.success
    frame = pd.read_parquet(home.labels / "adjudications.parquet")
    assert list(frame.columns) == ADJUDICATION_COLUMNS
    assert list(frame["decision"]) == ["correct", "skip"]
    assert frame.loc[0, "label"] == "4" and pd.isna(frame.loc[1, "label"])
    (check,) = result.get_asset_check_evaluations()
    assert check.passed
    # the decided label leaves the rebuilt queue but stays decided (and counted) in the app
    rebuilt = materialise(review_queue, home)
    assert list(pd.read_parquet(home.labels / "review_queue.parquet")["task"]) == ["breastbin", "density"]
    assert rebuilt.asset_materializations_for_node("review_queue")[0].metadata["app_no_longer_flagged"].value == 0
    with factory() as session:
        acr = session.get(QueueItem, items["acr"])
        assert (acr.active, acr.status, acr.current_label) == (True, "decided", "4")


def test_adjudication_check_names_each_malformed_decision():
    frame = pd.DataFrame([
        {"decision_id": "d1", "task": "acr", "decision": "correct", "label": "7"},
        {"decision_id": "d2", "task": "density", "decision": "unknown", "label": "B"},
        {"decision_id": "d2", "task": "acr", "decision": "approve", "label": None},
    ])
    problems = adjudication_problems(frame)
    assert "decision d1: label '7' is not a acr class" in problems
    assert "decision d2: unknown must not carry a label" in problems
    assert "decision d2: unknown decision 'approve'" in problems
    assert "decision_id d2 appears twice" in problems


def test_sensor_requests_adjudications_for_new_decisions_then_relabels_every_batch(home):
    materialise(review_queue, home)
    factory = init_db(make_engine(f"sqlite:///{home.review_db}"))
    with factory() as session:
        user = accounts.create_user(session, "alice", "alice-password")
        session.commit()
        iid = session.query(QueueItem).order_by(QueueItem.priority).first().id

    @dg.asset(deps=["adjudications"], partitions_def=dg.DynamicPartitionsDefinition(name="batch"))
    def image_labels():
        return None

    defs = dg.Definitions(assets=[review_queue, adjudications, image_labels], sensors=[review_decisions_sensor],
                          resources=default_resources(str(home.root)))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("batch", ["hmi", "inb"])

        def tick(cursor):
            ctx = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                          resources=default_resources(str(home.root)))
            return review_decisions_sensor(ctx)

        first = tick(None)
        assert first.run_requests == []                      # no decisions yet
        record_decision(factory, user, DecisionRequest(iid, "confirm", 0, "3" * 32))
        second = tick(first.cursor)
        assert [r.asset_selection for r in second.run_requests] == [[dg.AssetKey("adjudications")]]
        assert tick(second.cursor).run_requests == []        # same decisions: nothing new
        dg.materialize([adjudications], instance=instance,
                       resources=default_resources(str(home.root)))
        third = tick(second.cursor)
        assert [(r.asset_selection, r.partition_key) for r in third.run_requests] == [
            ([dg.AssetKey("image_labels")], "hmi"), ([dg.AssetKey("image_labels")], "inb")]
        assert json.loads(third.cursor)["decisions"] == 1


def test_cli_adds_an_annotator_syncs_the_queue_and_exports(home):
    runner = CliRunner()
    added = runner.invoke(cli, ["review", "add-user", "carol", "--password-stdin"], input="carol-password\n")
    assert added.exit_code == 0, added.output
    again = runner.invoke(cli, ["review", "add-user", "carol", "--password-stdin"], input="carol-password\n")
    assert again.exit_code == 2 and "already exists" in again.output
    short = runner.invoke(cli, ["review", "add-user", "dave", "--password-stdin"], input="short\n")
    assert short.exit_code == 2 and "at least 8" in short.output
    synced = runner.invoke(cli, ["review", "sync-queue"])
    assert synced.exit_code == 0 and "3 items" in synced.output and "3 added" in synced.output
    exported = runner.invoke(cli, ["review", "export"])
    assert exported.exit_code == 0 and "0 decisions" in exported.output
    assert (home.labels / "adjudications.parquet").is_file()
    factory = init_db(make_engine(f"sqlite:///{home.review_db}"))
    with factory() as session:
        carol = session.query(User).filter_by(username="carol").one()
        assert carol.password_hash.startswith("$argon2id$")


def test_cli_sync_queue_without_labels_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMMO_HOME", str(tmp_path / "empty"))
    result = CliRunner().invoke(cli, ["review", "sync-queue"])
    assert result.exit_code == 2 and "materialise the label assets" in result.output


def test_the_review_database_url_comes_from_its_environment_variable_never_from_run_config(home, tmp_path,
                                                                                            monkeypatch):
    elsewhere = tmp_path / "shared-review.db"
    monkeypatch.setenv(DB_ENV_VAR, f"sqlite:///{elsewhere}")
    resources = default_resources(str(home.root))
    assert isinstance(resources["review_db"].url, dg.EnvVar)   # the UI shows the variable's name, not the URL
    assert dg.materialize([review_queue], resources=resources).success
    assert elsewhere.is_file() and not home.review_db.exists()
