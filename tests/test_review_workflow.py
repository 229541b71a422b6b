"""Consensus, undo, roles, password change and the database's file mode, through the HTTP API."""

import os
import stat

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from curation.pseudonym import DEMO_KEY
from review_app.consensus import agreement
from review_app.export import decisions_frame, effective_decisions
from review_app.sample import build_sample_app, form_fields, login
from review_app.storage import Decision, QueueItem, Read

USERS = {"alice": "alice-password", "bob": "bob-password", "carol": "carol-password", "root": "root-password"}


@pytest.fixture()
def app(tmp_path, cheap_argon2):
    _, app = build_sample_app(tmp_path / "home", DEMO_KEY.encode(), annotators=USERS, double_read_tiers={0},
                              roles={"carol": "adjudicator", "root": "admin"})
    yield app
    app.state.engine.dispose()


def client(app, name):
    c = TestClient(app)
    assert login(c, name, USERS[name]).status_code == 303
    return c


def item(app, task):
    with app.state.session_factory() as session:
        return session.scalar(select(QueueItem).where(QueueItem.task == task))


def decide(c, iid, action):
    return c.post(f"/items/{iid}/decision", data=dict(form_fields(c.get(f"/items/{iid}").text), action=action),
                  follow_redirects=False)


def test_two_agreeing_blinded_reads_become_one_consensus_decision(app):
    iid = item(app, "breastbin").id
    alice, bob = client(app, "alice"), client(app, "bob")
    assert decide(alice, iid, "correct:1").status_code == 303
    assert "alice" not in bob.get(f"/items/{iid}").text.split("Decisions on this task")[0].split("signed in as")[1][60:]
    assert decide(bob, iid, "correct:1").status_code == 303
    with app.state.session_factory() as session:
        made = [(d.annotator, d.decision, d.label) for d in session.scalars(select(Decision))]
        assert len(session.scalars(select(Read)).all()) == 2
    assert made == [("alice+bob", "correct", "1")] and item(app, "breastbin").status == "decided"


def test_a_disputed_item_is_decided_only_by_an_adjudicator(app):
    iid = item(app, "breastbin").id
    alice, bob, carol = client(app, "alice"), client(app, "bob"), client(app, "carol")
    decide(alice, iid, "confirm"), decide(bob, iid, "correct:1")
    assert item(app, "breastbin").status == "disputed"
    assert carol.get("/next", follow_redirects=False).headers["location"] == f"/items/{iid}"
    assert f'id="decision-form-{iid}"' not in alice.get(f"/items/{iid}").text   # the breast's page, no form for it
    assert decide(carol, iid, "confirm").status_code == 303
    assert (item(app, "breastbin").status, item(app, "breastbin").current_label) == ("decided", "0")


def test_cohens_kappa_per_pair_and_task_comes_from_sklearn(app):
    from sklearn.metrics import cohen_kappa_score

    with app.state.session_factory() as session:
        users = {u: i + 1 for i, u in enumerate(USERS)}
        pairs = [("0", "0"), ("1", "1"), ("1", "0")]   # on the sample's three items
        for n, (a, b) in enumerate(pairs):
            for name, label in (("alice", a), ("bob", b)):
                session.add(Read(item_id=n + 1, task="breastbin", user_id=users[name], annotator=name,
                                 decision="correct", label=label))
        session.commit()
        got = agreement(session)
    assert [(p.task, p.first, p.second, p.n, p.agreed) for p in got] == [("breastbin", "alice", "bob", 3, 2)]
    assert got[0].kappa == pytest.approx(cohen_kappa_score(["0", "1", "1"], ["0", "1", "0"]))


def test_undo_appends_a_reversal_that_the_export_and_the_label_side_honour(app):
    import pandas as pd

    from label_mining.adjudication import effective_decisions as label_side

    alice = client(app, "alice")
    acr = item(app, "acr")
    decide(alice, acr.id, "correct:4")
    with app.state.session_factory() as session:
        done = session.scalar(select(Decision).where(Decision.item_id == acr.id))
    page = alice.get("/mine")
    assert f"/decisions/{done.decision_id}/undo" in page.text
    csrf = form_fields(alice.get(f"/items/{acr.id}").text)["csrf_token"]
    assert alice.post(f"/decisions/{done.decision_id}/undo", data={"csrf_token": csrf},
                      follow_redirects=False).status_code == 303
    after = item(app, "acr")
    assert (after.current_label, after.status) == ("3", "open")
    with app.state.session_factory() as session:
        frame = decisions_frame(session)
    assert list(frame["decision"]) == ["correct", "undo"] and frame["reverts"].iloc[1] == done.decision_id
    assert effective_decisions(frame).empty and label_side(pd.DataFrame(frame), "breast").empty
    again = alice.post(f"/decisions/{done.decision_id}/undo", data={"csrf_token": csrf})
    assert again.status_code == 409   # the reversal is already in force: nothing to undo


def test_only_an_admin_manages_users_and_anyone_changes_their_own_password(app):
    alice, root = client(app, "alice"), client(app, "root")
    assert alice.get("/admin/users", follow_redirects=False).status_code == 303
    csrf = form_fields(root.get(f"/items/{item(app, 'acr').id}").text)["csrf_token"]
    root.post("/admin/users", data={"csrf_token": csrf, "username": "dave", "password": "dave-password",
                                    "role": "adjudicator", "action": "create"})
    assert "dave" in root.get("/admin/users").text
    assert login(TestClient(app), "dave", "dave-password").status_code == 303
    csrf_a = form_fields(alice.get(f"/items/{item(app, 'acr').id}").text)["csrf_token"]
    wrong = alice.post("/account/password", data={"csrf_token": csrf_a, "current": "nope", "new": "new-password-1",
                                                  "repeat": "new-password-1"})
    assert wrong.status_code == 400
    ok = alice.post("/account/password", data={"csrf_token": csrf_a, "current": USERS["alice"],
                                               "new": "new-password-1", "repeat": "new-password-1"})
    assert ok.status_code == 200 and alice.get("/queue", follow_redirects=False).status_code == 200
    assert login(TestClient(app), "alice", "new-password-1").status_code == 303


def test_the_review_database_is_created_readable_by_its_owner_only(tmp_path):
    from review_app.storage import init_db, make_engine

    old = os.umask(0o022)
    try:
        engine = make_engine(f"sqlite:///{tmp_path / 'review' / 'review.db'}")
        init_db(engine)
        engine.dispose()
    finally:
        os.umask(old)
    for name in ("review.db", "review.db-wal", "review.db-shm"):
        path = tmp_path / "review" / name
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    assert stat.S_IMODE((tmp_path / "review").stat().st_mode) == 0o700
