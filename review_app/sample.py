"""A tiny, self-contained review home: two studies' labels, catalogue, cache and reports.

Used by the tests and handy for trying the app without running the pipeline. Identifiers are
pseudonymised exactly as the pipeline does, so the report join is the real one.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from curation.home import MammoHome
from curation.pseudonym import pseudonymise

BATCH = "hmi"

REPORTS = [
    # (accession, patient, reader_level, text)
    ("ACC1001", "PAT01", "senior",
     "Bilateral mammography. Left breast: spiculated mass upper outer quadrant, BI-RADS 5. "
     "Right breast: no suspicious findings. Density probably B-C."),
    ("ACC1002", "PAT02", "junior",
     "Right breast: grouped microcalcifications, probably benign, ACR 3. Left breast unremarkable. "
     "Heterogeneously dense breasts."),
]

# (phrase, report_mentions.type, value, laterality) as the label miner would find them
MENTIONS = {
    "ACC1001": [("BI-RADS 5", "assessment", "5", "L"), ("no suspicious findings", "assessment", "1", "R"),
                ("B-C", "density", "B-C", "B")],
    "ACC1002": [("ACR 3", "assessment", "3", "R"), ("Heterogeneously dense", "density", "C", "B")],
}


# an earlier screening exam of PAT01 (images only): the hanging protocol shows it beside ACC1001
PRIOR = ("ACC0901", "PAT01", "2018-06-01")


def _sample_pixels(rng, image_size: tuple[int, int]) -> np.ndarray:
    """A smooth 16-bit 'breast' (a bright half-ellipse fading to the skin line) plus noise, so window
    and level visibly change what is rendered."""
    h, w = image_size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    inside = ((yy - h / 2) / (h / 2)) ** 2 + (xx / w) ** 2
    tissue = np.clip(1.0 - inside, 0, 1) ** 0.5
    noise = rng.random(image_size, dtype=np.float32) * 0.15
    return np.clip((tissue * 0.8 + noise) * 65535, 0, 65535).astype(np.uint16)


def build_sample_home(root: Path, key: bytes, *, image_size: tuple[int, int] = (96, 64)) -> MammoHome:
    home = MammoHome(Path(root)).ensure()
    cohort = home.batch_root(BATCH)
    (cohort / "dicom").mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{"accession_number": a, "patient_id": p, "study_date": "2020-01-0%d" % (i + 1),
                   "report_text": t, "reader_id": f"R{i}", "reader_level": lvl}
                  for i, (a, p, lvl, t) in enumerate(REPORTS)]).to_csv(cohort / "reports.csv", index=False)

    rng = np.random.default_rng(0)
    catalog, index, image_labels, breast_labels = [], [], [], []
    exams = [(acc, pat, "2020-01-0%d" % (i + 1)) for i, (acc, pat, _, _) in enumerate(REPORTS)] + [PRIOR]
    for acc, pat, study_date in exams:
        acc_key = pseudonymise(acc, "accession", key)
        pid = pseudonymise(pat, "patient", key)
        for lat in ("L", "R"):
            breast_key = f"{acc_key}:{lat}"
            for view in ("CC", "MLO"):
                image_key = pseudonymise(f"1.2.3.{acc}.{lat}.{view}", "sop", key)
                cache_rel = f"{BATCH}/{image_key}.png"
                pixels = _sample_pixels(rng, image_size)
                (home.cache / BATCH).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(home.cache / cache_rel), pixels)
                catalog.append({"image_key": image_key, "batch": BATCH, "patient_pid": pid,
                                "accession_key": acc_key, "breast_key": breast_key, "laterality": lat,
                                "view": view, "view_conflict": False, "laterality_conflict": False,
                                "study_date": study_date})
                index.append({"image_key": image_key, "cache_path": cache_rel, "height": image_size[0],
                              "width": image_size[1], "flipped": lat == "R",
                              "orientation_disagreement": False})
                if acc == PRIOR[0]:
                    continue  # the prior exam has images only, no labels to review
                image_labels.append(_label(image_key=image_key, breast_key=breast_key, task="view", label=view,
                                           u=0.0, source="dicom_tag", rule_id="tag.view_position"))
    a1 = pseudonymise("ACC1001", "accession", key)
    a2 = pseudonymise("ACC1002", "accession", key)
    breast_labels += [
        # BI-RADS 5 in the report, benign core biopsy: discordant, the label miner flags it
        _label(accession_key=a1, breast_key=f"{a1}:L", task="breastbin", label="0", u=0.3, source="biopsy",
               rule_id="malignancy.biopsy_benign", evidence="biopsy 2020-01-20: benign", conflict=True),
        _label(accession_key=a1, breast_key=f"{a1}:L", task="acr", label="5", u=0.1, source="report",
               rule_id="birads.explicit", evidence="Left breast: spiculated mass upper outer quadrant, BI-RADS 5."),
        _label(accession_key=a1, breast_key=f"{a1}:L", task="density", label="B", u=0.6, source="report",
               rule_id="density.range", evidence="Density probably B-C."),
        _label(accession_key=a1, breast_key=f"{a1}:R", task="breastbin", label="0", u=0.2, source="derived",
               rule_id="malignancy.derived_from_acr", evidence="Right breast: no suspicious findings."),
        # ACR 3 and a malignant biopsy: certain malignancy label, not queued; the hedged ACR 3 is
        _label(accession_key=a2, breast_key=f"{a2}:R", task="breastbin", label="1", u=0.05, source="biopsy",
               rule_id="malignancy.biopsy_malignant", evidence="biopsy 2020-01-25: malignant"),
        _label(accession_key=a2, breast_key=f"{a2}:R", task="acr", label="3", u=0.7, source="report",
               rule_id="birads.explicit",
               evidence="Right breast: grouped microcalcifications, probably benign, ACR 3."),
        _label(accession_key=a2, breast_key=f"{a2}:L", task="density", label="C", u=0.2, source="report",
               rule_id="density.explicit", evidence="Heterogeneously dense breasts."),
    ]
    mentions = []
    for row, (acc, _, _, text) in enumerate(REPORTS):
        acc_key = pseudonymise(acc, "accession", key)
        for phrase, kind, value, side in MENTIONS[acc]:
            start = text.index(phrase)
            mentions.append({"accession_key": acc_key, "report_row": row, "span_start": start,
                             "span_end": start + len(phrase), "text": phrase, "type": kind, "value": value,
                             "laterality": side})
    for b in breast_labels:
        b["patient_pid"] = pseudonymise("PAT01" if b["accession_key"] == a1 else "PAT02", "patient", key)
        b["laterality"] = b["breast_key"][-1]
    labels_dir = home.labels_dir(BATCH)
    labels_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(breast_labels).to_parquet(labels_dir / "breast_labels.parquet", index=False)
    pd.DataFrame(image_labels).to_parquet(labels_dir / "image_labels.parquet", index=False)
    pd.DataFrame(mentions).to_parquet(labels_dir / "report_mentions.parquet", index=False)
    home.catalog_path(BATCH).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(catalog).to_parquet(home.catalog_path(BATCH), index=False)
    pd.DataFrame(index).to_parquet(home.cache_index_path(BATCH), index=False)
    return home


def _label(*, task: str, label: str | None, u: float, source: str, rule_id: str, evidence: str | None = None,
           conflict: bool = False, **keys) -> dict:
    return {**keys, "task": task, "label": label, "u": u, "weight": 0.0 if label is None else 1.0 - u,
            "source": source, "rule_id": rule_id, "evidence": evidence, "conflict": conflict,
            "policy_version": "sample"}


# ---- a ready app on the sample home (tests, trying the app locally) ------------------------
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
DECISION_ID_RE = re.compile(r'name="decision_id" value="([0-9a-f]{32})"')
VERSION_RE = re.compile(r'name="version" value="(\d+)"')


def build_sample_app(root: Path, key: bytes, *, annotators: dict[str, str] | None = None,
                     db_url: str | None = None, roles: dict[str, str] | None = None,
                     image_size: tuple[int, int] = (96, 64), **settings_overrides):
    """(settings, app) on a fresh sample home with its queue synced and the given annotators."""
    from review_app.accounts import create_user
    from review_app.settings import ReviewSettings, default_db_url
    from review_app.tables import build_queue_for_home, queue_path, sync_into_db, write_queue
    from review_app.web import create_app

    home = build_sample_home(root, key, image_size=image_size)
    queue, _ = build_queue_for_home(home)
    write_queue(queue, queue_path(home))
    settings = ReviewSettings(mammo_home=home.root, db_url=db_url or default_db_url(home),
                              secret_key="sample-secret-" + "x" * 32, **settings_overrides)
    sync_into_db(settings.db_url, queue)
    app = create_app(settings, pseudonym_key=key)
    with app.state.session_factory() as session:
        for name, password in (annotators or {}).items():
            create_user(session, name, password, role=(roles or {}).get(name, "annotator"))
        session.commit()
    return settings, app


def login(client, username: str, password: str):
    """Sign ``client`` (TestClient or httpx.Client) in through the real form; returns the response."""
    page = client.get("/login")
    token = CSRF_RE.search(page.text).group(1)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token,
                                       "next": "/queue"}, follow_redirects=False)


DECISION_FORM_RE = re.compile(r'<form method="post" action="/items/(\d+)/decision"([^>]*)>(.*?)</form>', re.S)


def form_fields(html: str, item_id: int | None = None) -> dict[str, str]:
    """csrf_token, version and decision_id of a decision form on a target's page: the form of task
    ``item_id``, by default the focused task's (the one the page's URL names)."""
    forms = [(int(i), attrs, body) for i, attrs, body in DECISION_FORM_RE.findall(html)]
    chosen = [f for f in forms if (f[0] == item_id if item_id is not None else 'data-focused="1"' in f[1])]
    if not chosen:
        raise LookupError(f"no decision form for {'item ' + str(item_id) if item_id else 'the focused task'} "
                          f"on this page (forms for items {[f[0] for f in forms]})")
    body = chosen[0][2]
    return {"csrf_token": CSRF_RE.search(body).group(1), "version": VERSION_RE.search(body).group(1),
            "decision_id": DECISION_ID_RE.search(body).group(1)}


class ServerProcess:
    """``uvicorn --factory review_app.web:app_from_env`` in a child process on a free local port."""

    def __init__(self, env: dict[str, str], cwd: Path, startup_s: float = 60.0):
        import os
        import socket
        import subprocess
        import sys

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "review_app.web:app_from_env", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning"],
            cwd=cwd, env=dict(os.environ, **env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._wait(startup_s)

    def _wait(self, startup_s: float) -> None:
        import time

        import httpx
        deadline = time.monotonic() + startup_s
        while True:
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"review server did not start: {self._proc.stdout.read().decode()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except Exception:
                self._proc.kill()
