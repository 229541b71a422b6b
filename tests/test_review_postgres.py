"""The review app on PostgreSQL (by URL): decisions, conflicts, append-only triggers, export.

A throw-away cluster is started with Debian's PostgreSQL (``pipelines.local_services``: run as the
``postgres`` system user, because the server refuses root) on 127.0.0.1 and a free port.
"""

import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from curation.pseudonym import DEMO_KEY
from pipelines.local_services import postgres_unavailable, throwaway_postgres
from review_app.decisions import ConflictError, DecisionRequest, record_decision
from review_app.sample import build_sample_app, form_fields, login
from review_app.storage import Decision, QueueItem, User
from review_app.tables import export_adjudications


def _can_run() -> str | None:
    why = postgres_unavailable()
    if why:
        return why
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg not installed (pip install 'psycopg[binary]')"
    return None


pytestmark = pytest.mark.skipif(_can_run() is not None, reason=_can_run() or "")


@pytest.fixture(scope="module")
def pg_url():
    # the same throw-away cluster as the scale tests (127.0.0.1 only), reached with psycopg 3
    with throwaway_postgres("review") as url:
        yield url.replace("postgresql+psycopg2://", "postgresql+psycopg://")


@pytest.fixture()
def app(pg_url, tmp_path, monkeypatch, cheap_argon2):
    settings, app = build_sample_app(tmp_path / "home", DEMO_KEY.encode(), db_url=pg_url,
                                     annotators={"alice": "alice-password", "bob": "bob-password"})
    yield app
    with app.state.engine.begin() as conn:   # a clean schema for the next test
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    app.state.engine.dispose()


def first_item(app) -> int:
    with app.state.session_factory() as session:
        return session.scalar(select(QueueItem.id).order_by(QueueItem.priority))


def test_decisions_and_conflicts_work_on_postgres(app, tmp_path):
    alice, bob = TestClient(app), TestClient(app)
    login(alice, "alice", "alice-password")
    login(bob, "bob", "bob-password")
    iid = first_item(app)
    a_form, b_form = form_fields(alice.get(f"/items/{iid}").text), form_fields(bob.get(f"/items/{iid}").text)
    assert alice.post(f"/items/{iid}/decision", data=dict(a_form, action="confirm"),
                      follow_redirects=False).status_code == 303
    late = bob.post(f"/items/{iid}/decision", data=dict(b_form, action="correct:1"))   # post-redirect-get
    assert late.status_code == 409 and "Not saved: alice decided this item" in late.text
    frame = export_adjudications(str(app.state.engine.url.render_as_string(hide_password=False)),
                                 tmp_path / "adj.parquet")
    assert list(frame["annotator"]) == ["alice"] and list(frame["decision"]) == ["confirm"]


def test_postgres_trigger_keeps_decisions_append_only(app):
    factory = app.state.session_factory
    with factory() as session:
        alice = session.scalar(select(User).where(User.username == "alice"))
    record_decision(factory, alice, DecisionRequest(first_item(app), "confirm", 0, "e" * 32))
    for sql in ("UPDATE decisions SET label = '1'", "DELETE FROM decisions"):
        with factory() as session, pytest.raises(Exception, match="append-only"):
            session.execute(text(sql))


def test_racing_decisions_on_one_item_store_exactly_one(app):
    factory = app.state.session_factory
    with factory() as session:
        users = list(session.scalars(select(User)))
    iid, outcomes, barrier = first_item(app), [], threading.Barrier(8)

    def race(n: int) -> None:
        barrier.wait()
        try:
            record_decision(factory, users[n % 2], DecisionRequest(iid, "correct", 0, f"{n:032x}", "1"))
            outcomes.append("stored")
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 7 + ["stored"]
    with factory() as session:
        assert len(list(session.scalars(select(Decision)))) == 1
        assert session.get(QueueItem, iid).version == 1
