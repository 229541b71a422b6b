"""Load: 20 annotators against a real uvicorn server, 500 decisions — none lost, none duplicated.

Each reviewer is a thread with its own HTTP client and account. Most decisions come from
``/next`` (leased items), every fifth goes to one of a few *hot* items that all reviewers fight
over, and some forms are sent twice (a double click). Afterwards every decision the server
acknowledged must be in the database exactly once, and each item's version history must be an
unbroken chain 1, 2, … — the proof that no concurrent decision overwrote another.
"""

import json
import random
import re
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from review_app.accounts import create_user
from review_app.queue import QUEUE_COLUMNS
from review_app.sample import ServerProcess, form_fields, login
from review_app.settings import DB_ENV_VAR, SECRET_ENV_VAR
from review_app.storage import Decision, QueueItem, init_db, make_engine
from review_app.sync import sync_queue

REVIEWERS = 20
DECISIONS_EACH = 25               # 20 x 25 = 500 stored decisions
ITEMS = 600
HOT_ITEMS = 5
ROOT = Path(__file__).resolve().parents[1]
CONFIRM_DISABLED = re.compile(r'<button[^>]*value="confirm"[^>]*\bdisabled\b')
CORRECT = re.compile(r'value="(correct:[^"]+)"')
ALERT = re.compile(r'role="alert"[^>]*>([^<]*)<')


def synthetic_queue(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = []
    for i in range(n):
        task = ("breastbin", "acr", "density")[i % 3]
        label = {"breastbin": "0", "acr": "3", "density": "B"}[task]
        rows.append({"priority": i + 1, "item_key": f"breast|A-{i:016x}:L|{task}", "target_level": "breast",
                     "target_key": f"A-{i:016x}:L", "task": task, "batch": "hmi", "breast_key": f"A-{i:016x}:L",
                     "accession_key": f"A-{i:016x}", "label": label, "u": float(rng.uniform(0.5, 1)),
                     "source": "report", "rule_id": "load", "evidence": None, "span_start": None,
                     "span_end": None, "report_row": None, "related_spans": "[]", "reasons": "high_uncertainty", "tier": 3, "model_label": None,
                     "model_p_label": None, "images_json": "[]"})
    return pd.DataFrame(rows, columns=QUEUE_COLUMNS)


@pytest.fixture()
def server(tmp_path, cheap_argon2):
    db_url = f"sqlite:///{tmp_path / 'review.db'}"
    engine = make_engine(db_url)
    factory = init_db(engine)
    with factory() as session:  # test-cost hashes (tests/conftest.py); the server verifies at the hash's cost
        sync_queue(session, synthetic_queue(ITEMS))
        for r in range(REVIEWERS):
            create_user(session, f"reviewer{r:02d}", f"password-{r:02d}")
        session.commit()
    server = ServerProcess({"MAMMO_HOME": str(tmp_path / "home"), DB_ENV_VAR: db_url,
                            SECRET_ENV_VAR: "load-test-secret-" + "x" * 32}, cwd=ROOT)
    yield server.base_url, factory
    server.stop()
    engine.dispose()


def reviewer(base: str, r: int, hot: list[int], out: dict, errors: list) -> None:
    rng = random.Random(r)
    acked, conflicts, replays, latencies = [], 0, 0, []
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            assert login(client, f"reviewer{r:02d}", f"password-{r:02d}").status_code == 303
            while len(acked) < DECISIONS_EACH:
                if len(acked) % 5 == 4:
                    iid = rng.choice(hot)
                else:
                    nxt = client.get("/next")
                    assert nxt.status_code == 303, nxt.text[:300]
                    iid = int(nxt.headers["location"].rsplit("/", 1)[1])
                page = client.get(f"/items/{iid}")
                assert page.status_code == 200
                action = rng.choices(["confirm", "correct", "unknown", "skip"], [5, 2, 2, 1])[0]
                if iid in hot and action == "skip":
                    action = "confirm"
                if action == "confirm" and CONFIRM_DISABLED.search(page.text):
                    action = "correct"   # a label set to unknown has nothing to confirm
                if action == "correct":
                    action = rng.choice(CORRECT.findall(page.text))
                form = dict(form_fields(page.text), action=action)
                t0 = time.perf_counter()
                sent = client.post(f"/items/{iid}/decision", data=form)
                latencies.append(time.perf_counter() - t0)
                if sent.status_code == 303 and sent.headers["location"].endswith("?conflict=1"):
                    conflicts += 1   # post-redirect-get: the item page then shows the conflict once, as 409
                    shown = client.get(sent.headers["location"])
                    assert shown.status_code == 409 and "Not saved:" in shown.text
                    continue
                assert sent.status_code == 303, ALERT.findall(sent.text)
                acked.append((form["decision_id"], iid, action))
                if rng.random() < 0.1:   # a double click: the same form again
                    again = client.post(f"/items/{iid}/decision", data=form)
                    assert again.status_code == 303
                    replays += 1
    except Exception as exc:  # surfaced by the main thread
        errors.append(f"reviewer{r:02d}: {exc!r}")
    out[r] = {"acked": acked, "conflicts": conflicts, "replays": replays, "latencies": latencies}


def test_twenty_concurrent_reviewers_lose_and_duplicate_no_decision(server):
    base, factory = server
    with factory() as session:
        hot = list(session.scalars(select(QueueItem.id).order_by(QueueItem.priority).limit(HOT_ITEMS)))
    out, errors = {}, []
    threads = [threading.Thread(target=reviewer, args=(base, r, hot, out, errors)) for r in range(REVIEWERS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    wall = time.perf_counter() - start
    assert not errors, errors

    acked = [a for o in out.values() for a in o["acked"]]
    with factory() as session:
        stored = list(session.scalars(select(Decision).order_by(Decision.id)))
        items = {i.id: i for i in session.scalars(select(QueueItem))}
    stored_ids = Counter(d.decision_id for d in stored)
    acked_ids = {a[0] for a in acked}

    assert len(acked) == REVIEWERS * DECISIONS_EACH == 500
    assert acked_ids == set(stored_ids), "a decision the server acknowledged is missing (or one was invented)"
    assert max(stored_ids.values()) == 1, "a decision was stored twice"
    assert {d.decision_id: d.annotator for d in stored} == {a[0]: f"reviewer{r:02d}" for r, o in out.items()
                                                           for a in o["acked"]}
    for iid, item in items.items():
        chain = [d for d in stored if d.item_id == iid and d.resulting_version is not None]
        assert [d.resulting_version for d in chain] == list(range(1, len(chain) + 1))
        assert [d.base_version for d in chain] == list(range(len(chain)))
        assert item.version == len(chain)
        if chain:
            assert item.current_label == chain[-1].label
            # each decision saw the value the previous one left behind
            for before, after in zip(chain, chain[1:]):
                assert after.previous_label == before.label

    latencies = sorted(x for o in out.values() for x in o["latencies"])
    figures = {
        "reviewers": REVIEWERS, "decisions_stored": len(stored), "decisions_acknowledged": len(acked),
        "lost": len(acked_ids - set(stored_ids)), "duplicated": sum(n - 1 for n in stored_ids.values()),
        "conflicts_409": sum(o["conflicts"] for o in out.values()),
        "double_submits_absorbed": sum(o["replays"] for o in out.values()),
        "hot_item_decisions": sum(1 for d in stored if d.item_id in hot),
        "wall_s": round(wall, 2), "decisions_per_s": round(len(stored) / wall, 1),
        "post_p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "post_p95_ms": round(1000 * latencies[int(len(latencies) * 0.95)], 1),
    }
    print("\nreview load test:", json.dumps(figures))
    assert figures["lost"] == 0 and figures["duplicated"] == 0
    assert figures["conflicts_409"] > 0, "the hot items should have produced real conflicts"
