"""The review app through its HTTP API (FastAPI TestClient): pages, decisions, conflicts, export."""

import re

import cv2
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from curation.pseudonym import DEMO_KEY
from review_app import APP_VERSION
from review_app.export import ADJUDICATION_COLUMNS
from review_app.sample import REPORTS, build_sample_app, form_fields, login
from review_app.storage import (AppendOnlyError, Decision, QueueItem, SchemaMismatch, init_db,
                                make_engine)
from review_app.tables import export_adjudications

KEY = DEMO_KEY.encode()
USERS = {"alice": "alice-password", "bob": "bob-password"}


@pytest.fixture(autouse=True)
def _cheap_argon2(cheap_argon2):
    """Every test here creates accounts: use the shared test-cost hasher (tests/conftest.py)."""


@pytest.fixture()
def sample(tmp_path):
    settings, app = build_sample_app(tmp_path / "home", KEY, annotators=USERS)
    return settings, app


@pytest.fixture()
def alice(sample):
    client = TestClient(sample[1])
    assert login(client, "alice", USERS["alice"]).status_code == 303
    return client


@pytest.fixture()
def bob(sample):
    client = TestClient(sample[1])
    assert login(client, "bob", USERS["bob"]).status_code == 303
    return client


def item_id(app, task: str) -> int:
    with app.state.session_factory() as session:
        return session.scalar(select(QueueItem.id).where(QueueItem.task == task).order_by(QueueItem.priority))


def decide(client, iid: int, action: str, fields: dict | None = None):
    page = client.get(f"/items/{iid}")
    data = dict(fields or form_fields(page.text), action=action)
    return client.post(f"/items/{iid}/decision", data=data, follow_redirects=False)


def evidence_of(html: str, iid: int) -> str:
    """The report block a target's page shows for task ``iid`` (each task highlights its own evidence)."""
    return html.split(f'<div class="evidence-of" data-item="{iid}"', 1)[1].split('<div class="evidence-of"', 1)[0]


def decisions(app) -> list[Decision]:
    with app.state.session_factory() as session:
        return list(session.scalars(select(Decision).order_by(Decision.id)))


def test_landing_page_answers_without_login(sample):
    response = TestClient(sample[1]).get("/")
    assert response.status_code == 200
    assert "Sign in to review" in response.text


def test_queue_lists_pathology_conflict_first_with_progress(alice):
    page = alice.get("/queue")
    assert page.status_code == 200
    rows = re.findall(r'<tr class="target-row" data-tasks="(\d+)">\s*<td>(\d+)</td><td>([^<]+)</td>\s*<td>(.*?)</td>',
                      page.text, flags=re.S)
    # one row per breast: the left breast's malignancy (pathology conflict) and density, then the right's ACR
    assert [(int(n), int(p), level) for n, p, level, _ in rows] == [(2, 1, "breast"), (1, 2, "breast")]
    assert re.findall(r'<span class="queued-task">([^(]+) \(', rows[0][3]) == ["Malignancy", "Breast density"]
    assert re.findall(r'<span class="queued-task">([^(]+) \(', rows[1][3]) == ["ACR / BI-RADS category"]
    assert "pathology disagrees with the report" in page.text
    assert "0 of 3 flagged labels decided" in re.sub(r"</?strong>", "", page.text)


def test_next_hands_out_the_highest_priority_item(sample, alice):
    response = alice.get("/next", follow_redirects=False)
    assert response.headers["location"] == f"/items/{item_id(sample[1], 'breastbin')}"


def test_item_page_shows_report_with_evidence_highlighted_and_no_raw_identifiers(sample, alice):
    page = alice.get(f"/items/{item_id(sample[1], 'breastbin')}")
    assert page.status_code == 200
    # a biopsy label: its evidence is the pathology row, the report's assessment is what contradicts it
    evidence = evidence_of(page.text, item_id(sample[1], "breastbin"))
    assert re.search(r'<dd class="pathology"><strong>biopsy</strong>: biopsy 2020-01-20: benign</dd>', page.text)
    assert re.search(r'<mark class="related"[^>]*>BI-RADS 5</mark>', evidence)
    assert "<mark>" not in evidence.split('class="report-text"', 1)[1]   # no report sentence claims to be it
    assert "spiculated mass upper outer quadrant" in page.text  # the report text itself
    for accession, patient, *_ in REPORTS:                     # raw identifiers never appear
        assert accession not in page.text and patient not in page.text
    assert "R1" not in re.sub(r"<[^>]+>", " ", page.text).split()  # nor the reader id


def test_image_endpoint_serves_a_downscaled_8_bit_png(tmp_path):
    settings, app = build_sample_app(tmp_path / "home", KEY, annotators=USERS, preview_height=64)
    client = TestClient(app)
    login(client, "alice", USERS["alice"])
    response = client.get(f"/items/{item_id(app, 'breastbin')}/images/0.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image.dtype == np.uint8 and image.shape == (64, 43)   # 96x64 cache image at height 64
    assert client.get(f"/items/{item_id(app, 'breastbin')}/images/99.png").status_code == 404


def test_confirm_records_who_when_previous_value_and_app_version(sample, alice):
    iid = item_id(sample[1], "breastbin")
    response = decide(alice, iid, "confirm")
    # the same breast's density is flagged too: the annotator stays on this breast's page for it
    assert response.status_code == 303 and response.headers["location"] == f"/items/{item_id(sample[1], 'density')}"
    (d,) = decisions(sample[1])
    assert (d.annotator, d.decision, d.label, d.previous_label, d.previous_u, d.app_version) == \
           ("alice", "confirm", "0", "0", pytest.approx(0.3), APP_VERSION)
    assert d.base_version == 0 and d.resulting_version == 1
    with sample[1].state.session_factory() as session:
        item = session.get(QueueItem, iid)
        assert (item.status, item.current_label, item.current_u, item.version) == ("decided", "0", 0.0, 1)


def test_correct_stores_the_chosen_class(sample, alice):
    iid = item_id(sample[1], "acr")
    assert decide(alice, iid, "correct:4").status_code == 303
    (d,) = decisions(sample[1])
    assert (d.decision, d.label, d.previous_label) == ("correct", "4", "3")


def test_correct_to_a_class_outside_the_vocabulary_is_refused(sample, alice):
    response = decide(alice, item_id(sample[1], "density"), "correct:E")
    assert response.status_code == 400
    assert "not a valid density label" in response.text
    assert decisions(sample[1]) == []


def test_unknown_clears_the_label_and_skip_only_moves_the_annotator_on(sample, alice):
    density, acr = item_id(sample[1], "density"), item_id(sample[1], "acr")
    decide(alice, density, "unknown")
    decide(alice, acr, "skip")
    unknown, skip = decisions(sample[1])
    assert (unknown.label, unknown.resulting_version) == (None, 1)
    assert (skip.decision, skip.resulting_version) == ("skip", None)
    with sample[1].state.session_factory() as session:
        assert session.get(QueueItem, acr).status == "open"          # still open for others
    # alice is not handed the skipped item again; bob is
    assert alice.get("/next", follow_redirects=False).headers["location"] != f"/items/{acr}"


def test_second_annotator_on_the_same_item_gets_a_clear_conflict(sample, alice, bob):
    iid = item_id(sample[1], "breastbin")
    alice_form = form_fields(alice.get(f"/items/{iid}").text)
    bob_form = form_fields(bob.get(f"/items/{iid}").text)
    assert alice.post(f"/items/{iid}/decision", data=dict(alice_form, action="confirm"),
                      follow_redirects=False).status_code == 303
    late = bob.post(f"/items/{iid}/decision", data=dict(bob_form, action="correct:1"), follow_redirects=False)
    assert late.status_code == 303 and late.headers["location"] == f"/items/{iid}?conflict=1"
    shown = bob.get(late.headers["location"])
    assert shown.status_code == 409
    assert "Not saved: alice decided this item (confirm)" in shown.text
    assert [d.annotator for d in decisions(sample[1])] == ["alice"]   # bob's did not overwrite


def test_reloading_the_page_after_a_conflict_never_re_posts_the_decision(sample, alice, bob):
    iid = item_id(sample[1], "breastbin")
    bob_form = form_fields(bob.get(f"/items/{iid}").text)
    decide(alice, iid, "confirm")
    late = bob.post(f"/items/{iid}/decision", data=dict(bob_form, action="correct:1"))   # followed: a GET
    assert late.status_code == 409 and late.request.method == "GET"
    reloaded = bob.get(str(late.url))
    assert reloaded.status_code == 200 and "Not saved" not in reloaded.text
    assert [d.annotator for d in decisions(sample[1])] == ["alice"]


def test_resubmitting_the_same_form_stores_one_decision(sample, alice):
    iid = item_id(sample[1], "acr")
    form = dict(form_fields(alice.get(f"/items/{iid}").text), action="correct:4")
    first = alice.post(f"/items/{iid}/decision", data=form, follow_redirects=False)
    again = alice.post(f"/items/{iid}/decision", data=form, follow_redirects=False)
    assert first.status_code == again.status_code == 303
    assert len(decisions(sample[1])) == 1


def test_decisions_are_append_only(sample, alice):
    decide(alice, item_id(sample[1], "acr"), "correct:4")
    factory = sample[1].state.session_factory
    with factory() as session:
        d = session.scalar(select(Decision))
        d.label = "2"
        with pytest.raises(AppendOnlyError):
            session.flush()
    with factory() as session, pytest.raises(Exception, match="append-only"):
        session.execute(text("UPDATE decisions SET label = '2'"))
    with factory() as session, pytest.raises(Exception, match="append-only"):
        session.execute(text("DELETE FROM decisions"))


def test_progress_per_annotator(sample, alice, bob):
    decide(alice, item_id(sample[1], "breastbin"), "confirm")
    decide(bob, item_id(sample[1], "acr"), "correct:4")
    decide(bob, item_id(sample[1], "density"), "skip")
    stats = alice.get("/api/progress").json()
    assert (stats["items"], stats["decided"], stats["open"]) == (3, 2, 1)
    assert {a["annotator"]: (a["confirm"], a["correct"], a["skip"]) for a in stats["annotators"]} == \
           {"alice": (1, 0, 0), "bob": (0, 1, 1)}
    page = alice.get("/queue").text
    assert "You: 1 decided (1 confirmed, 0 corrected" in re.sub(r"\s+", " ", page)


def test_export_writes_contract_columns_and_is_byte_stable(sample, alice, tmp_path):
    decide(alice, item_id(sample[1], "acr"), "correct:4")
    decide(alice, item_id(sample[1], "density"), "skip")
    settings = sample[0]
    first = export_adjudications(settings.db_url, tmp_path / "a.parquet")
    export_adjudications(settings.db_url, tmp_path / "b.parquet")
    assert list(first.columns) == ADJUDICATION_COLUMNS
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    back = pd.read_parquet(tmp_path / "a.parquet")
    assert list(back["decision"]) == ["correct", "skip"]
    assert back.loc[0, "target_key"].startswith("A-") and back.loc[0, "target_level"] == "breast"
    assert str(back["decided_at"].dtype) == "datetime64[us, UTC]"


def test_report_markup_is_shown_as_text_never_executed(sample, alice):
    settings, app = sample
    reports_csv = settings.mammo_home / "cohorts" / "hmi" / "reports.csv"
    frame = pd.read_csv(reports_csv, dtype=str)
    frame.loc[0, "report_text"] = "<img src=x onerror=alert(1)> BI-RADS 5 <script>alert(2)</script>"
    frame.to_csv(reports_csv, index=False)
    page = alice.get(f"/items/{item_id(app, 'breastbin')}").text
    assert "<img src=x" not in page and "<script>alert" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_a_span_is_highlighted_only_in_the_report_it_was_mined_from(sample, alice):
    settings, app = sample
    reports_csv = settings.mammo_home / "cohorts" / "hmi" / "reports.csv"
    frame = pd.read_csv(reports_csv, dtype=str)
    second = frame.iloc[[0]].assign(report_text="Second reader: left mass, BI-RADS 4.", reader_level="junior")
    pd.concat([frame, second]).to_csv(reports_csv, index=False)   # row 2: same study, another reader
    page = alice.get(f"/items/{item_id(app, 'density')}").text
    first, second = re.findall(r'<div class="report-text">(.*?)</div>', evidence_of(page, item_id(app, "density")),
                               flags=re.S)
    assert "<mark>B-C</mark>" in first
    assert second == "Second reader: left mass, BI-RADS 4."


def test_a_database_of_an_older_layout_is_refused_with_what_to_do(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE queue_items (id INTEGER PRIMARY KEY, item_key VARCHAR(200))"))
    with pytest.raises(SchemaMismatch, match=r"missing queue_items\.priority.*mammo-mtl review export"):
        init_db(engine)


def test_next_hands_a_second_annotator_another_breast_not_the_first_ones_other_task(sample, alice, bob):
    app = sample[1]
    assert alice.get("/next", follow_redirects=False).headers["location"] == f"/items/{item_id(app, 'breastbin')}"
    # alice holds the left breast (malignancy and density): bob gets the right breast's ACR
    assert bob.get("/next", follow_redirects=False).headers["location"] == f"/items/{item_id(app, 'acr')}"


def test_previous_steps_back_a_breast_not_a_task_of_the_same_breast(sample, alice):
    app = sample[1]
    decide(alice, item_id(app, "acr"), "confirm")              # right breast
    decide(alice, item_id(app, "breastbin"), "confirm")        # left breast, whose density is open
    back = alice.get(f"/previous?current={item_id(app, 'density')}", follow_redirects=False)
    assert back.headers["location"] == f"/items/{item_id(app, 'acr')}"
