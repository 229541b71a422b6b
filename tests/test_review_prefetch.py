"""Viewer images prepared ahead: built once per file, the same bytes as on request, no identifiers."""

import io
import json
import threading
import time

import pydicom
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from curation.pseudonym import DEMO_KEY
from review_app.prefetch import ImageWarmer, SingleFlightCache, WarmJob
from review_app.routes_images import warm_jobs
from review_app.sample import REPORTS, build_sample_app, login
from review_app.storage import QueueItem

USERS = {"alice": "alice-password"}


def test_concurrent_requests_for_one_file_build_it_once(tmp_path):
    cache, calls = SingleFlightCache(4), []
    (tmp_path / "a").write_bytes(b"x")
    key = (str(tmp_path / "a"), 0.0)

    def build():
        calls.append(1)
        time.sleep(0.2)
        return b"built"

    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get(key, build))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1] and got == [b"built"] * 6


def test_a_failed_build_lets_the_next_request_try_again_and_see_the_error():
    cache = SingleFlightCache(4)
    with pytest.raises(OSError):
        cache.get(("p", 0.0), lambda: (_ for _ in ()).throw(OSError("unreadable")))
    assert cache.get(("p", 0.0), lambda: b"ok") == b"ok"


@pytest.fixture()
def app(tmp_path, cheap_argon2):
    _, app = build_sample_app(tmp_path / "home", DEMO_KEY.encode(), annotators=USERS, prefetch_targets=2)
    yield app
    app.state.engine.dispose()


def test_opening_the_queue_prepares_the_first_targets_images_in_the_background(app):
    client = TestClient(app)
    login(client, "alice", USERS["alice"])
    warmer: ImageWarmer = app.state.images
    assert client.get("/queue").status_code == 200
    deadline = time.monotonic() + 30
    while not warmer.idle() and time.monotonic() < deadline:
        time.sleep(0.05)
    with app.state.session_factory() as session:
        first = session.scalar(select(QueueItem).order_by(QueueItem.priority))
        jobs = warm_jobs(app.state.settings.mammo_home / "cache", [first])
    assert len(jobs) == 8 and sum(j.dicom for j in jobs) == 2        # 4 views + prior; the breast's 2 for the viewer
    assert all(warmer.previews.cached((str(j.path), j.path.stat().st_mtime)) for j in jobs)
    assert all(warmer.dicoms.cached((str(j.path), j.path.stat().st_mtime)) for j in jobs if j.dicom)


def test_a_prepared_dicom_is_what_the_request_would_build_and_carries_no_identifier(app):
    client = TestClient(app)
    login(client, "alice", USERS["alice"])
    with app.state.session_factory() as session:
        first = session.scalar(select(QueueItem).order_by(QueueItem.priority))
        job = next(j for j in warm_jobs(app.state.settings.mammo_home / "cache", [first]) if j.dicom)
    cold = ImageWarmer(preview_height=1024)
    on_request = cold.dicom(job.path, job.image_key)
    ahead = ImageWarmer(preview_height=1024)
    ahead.build(WarmJob(job.path, job.image_key, dicom=True))
    assert ahead.dicom(job.path, job.image_key) == on_request
    position = next(i for i, img in enumerate(json.loads(first.images_json)) if img["image_key"] == job.image_key)
    served = client.get(f"/items/{first.id}/images/{position}.dcm")
    assert served.status_code == 200 and served.content == on_request
    ds = pydicom.dcmread(io.BytesIO(served.content))
    for tag in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "StudyDate", "InstitutionName"):
        assert tag not in ds
    for accession, patient, *_ in REPORTS:
        assert accession.encode() not in served.content and patient.encode() not in served.content
