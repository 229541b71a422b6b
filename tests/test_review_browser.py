"""A real browser (Debian's Chromium via Playwright) signs in, confirms one label by keyboard
shortcut and corrects another by clicking, against a real uvicorn server."""

from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from review_app import accounts
from review_app.sample import ServerProcess, build_sample_app
from review_app.settings import DB_ENV_VAR, SECRET_ENV_VAR
from review_app.storage import Decision, QueueItem

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
KEY = "browser-test-site-key"
ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed at /usr/bin/chromium "
                                                     "(apt-get install chromium; .ci/run installs it)"),
]


@pytest.fixture()
def served(tmp_path, monkeypatch):
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    settings, app = build_sample_app(tmp_path / "home", KEY.encode(), annotators={"alice": "alice-password"})
    server = ServerProcess({"MAMMO_HOME": str(settings.mammo_home), DB_ENV_VAR: settings.db_url,
                            SECRET_ENV_VAR: "browser-test-secret-" + "x" * 32, "MAMMO_PSEUDONYM_KEY": KEY}, cwd=ROOT)
    yield server.base_url, app.state.session_factory
    server.stop()
    app.state.engine.dispose()


def test_annotator_signs_in_confirms_one_label_and_corrects_another(served):
    from playwright.sync_api import expect, sync_playwright

    base, factory = served
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)
            page.goto(f"{base}/queue")
            expect(page).to_have_url(f"{base}/login?next=/queue")
            page.fill("#username", "alice")
            page.fill("#password", "alice-password")
            page.click("#login-form button[type=submit]")
            expect(page).to_have_url(f"{base}/queue")
            expect(page.locator("#overall")).to_contain_text("0 of 3 flagged labels decided")

            page.click("#start")
            expect(page.locator("h1")).to_contain_text("Malignancy")
            expect(page.locator(".report-text mark").first).to_have_text("BI-RADS 5")
            image = page.locator(".images img").first
            expect(image).to_be_visible()
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
            page.keyboard.press("y")                                  # confirm by shortcut

            expect(page.locator("h1")).to_contain_text("ACR / BI-RADS category")
            expect(page.locator("#current-label")).to_contain_text("3")
            page.click('#decision-form button[value="correct:4"]')   # correct by click

            expect(page.locator("h1")).to_contain_text("Breast density")
            page.goto(f"{base}/queue")
            expect(page.locator("#overall")).to_contain_text("2 of 3 flagged labels decided")
            expect(page.locator("#annotators")).to_contain_text("alice")
        finally:
            browser.close()

    with factory() as session:
        made = [(d.annotator, d.task, d.decision, d.label, d.previous_label)
                for d in session.scalars(select(Decision).order_by(Decision.id))]
        statuses = {i.task: (i.status, i.current_label, i.current_u) for i in session.scalars(select(QueueItem))}
    assert made == [("alice", "breastbin", "confirm", "0", "0"), ("alice", "acr", "correct", "4", "3")]
    assert statuses["breastbin"] == ("decided", "0", 0.0) and statuses["acr"] == ("decided", "4", 0.0)
    assert statuses["density"][0] == "open"
