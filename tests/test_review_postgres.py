"""The review app on PostgreSQL (by URL): decisions, conflicts, append-only triggers, export.

A throw-away cluster is started with Debian's PostgreSQL (run as the ``postgres`` system user,
because the server refuses root) on a Unix socket in a temporary folder.
"""

import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from curation.pseudonym import DEMO_KEY
from review_app.decisions import ConflictError, DecisionRequest, record_decision
from review_app.sample import build_sample_app, form_fields, login
from review_app.storage import Decision, QueueItem, User
from review_app.tables import export_adjudications


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / name).exists():
            return str(base / name)
    return None


INITDB, PG_CTL = _pg_bin("initdb"), _pg_bin("pg_ctl")


def _can_run() -> str | None:
    if INITDB is None or PG_CTL is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) not installed"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg not installed (pip install 'psycopg[binary]')"
    if os.geteuid() == 0 and subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
        return "running as root without a 'postgres' system user to start the server"
    return None


pytestmark = pytest.mark.skipif(_can_run() is not None, reason=_can_run() or "")


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def pg_url():
    # directly under /tmp: pytest's own tmp folders are private to root, and the server runs as postgres
    root = Path(tempfile.mkdtemp(prefix="mammo-review-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    subprocess.run(_as_postgres([INITDB, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
                   check=True, capture_output=True)
    subprocess.run(_as_postgres([PG_CTL, "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                                 f"-k {sock} -c listen_addresses='' -F", "start"]), check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@/postgres?host={sock}"
    finally:
        subprocess.run(_as_postgres([PG_CTL, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


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
