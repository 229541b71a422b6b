"""Screenshots for docs/review_app.md: ``python -m review_app.screenshots docs/img`` (needs Chromium).

Builds the sample home with blinded double reading for tier 0, has two annotators disagree on the
pathology conflict and an adjudicator settle it, and saves the viewer page and the agreement page
as small PNGs (downscaled, 64-level grey/colour palette).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
def _settled(page) -> None:
    page.wait_for_selector('#viewer[data-ready="1"]')
    page.wait_for_function("() => [...document.querySelectorAll('.hanging img')].every(i => i.complete && i.naturalWidth)")
    page.wait_for_timeout(300)


USERS = {"alice": "alice-password", "bob": "bob-password", "carol": "carol-password"}


def _small_png(raw: bytes, out: Path, width: int = 1100) -> None:
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    h, w = image.shape[:2]
    if w > width:
        image = cv2.resize(image, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)
    image = (image // 8 * 8).astype(np.uint8)  # fewer distinct colours: much better PNG compression
    cv2.imwrite(str(out), image, [cv2.IMWRITE_PNG_COMPRESSION, 9])


def main(out_dir: str) -> None:
    from playwright.sync_api import sync_playwright

    from review_app.sample import ServerProcess, build_sample_app
    from review_app.settings import DB_ENV_VAR, DOUBLE_READ_ENV_VAR, SECRET_ENV_VAR

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="review-shots-"))
    settings, app = build_sample_app(root / "home", b"screenshot-key", annotators=USERS,
                                     roles={"carol": "adjudicator"}, image_size=(1024, 768))
    server = ServerProcess({"MAMMO_HOME": str(settings.mammo_home), DB_ENV_VAR: settings.db_url,
                            SECRET_ENV_VAR: "s" * 40, "MAMMO_PSEUDONYM_KEY": "screenshot-key",
                            DOUBLE_READ_ENV_VAR: "0"}, cwd=Path(__file__).resolve().parents[1])
    base = server.base_url
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pages = {}
            for name in USERS:
                page = browser.new_context(viewport={"width": 1500, "height": 1050}).new_page()
                page.goto(f"{base}/login")
                page.fill("#username", name)
                page.fill("#password", USERS[name])
                page.click("#login-form button[type=submit]")
                page.wait_for_url(f"{base}/queue")
                pages[name] = page
            pages["alice"].click("#start")
            _settled(pages["alice"])
            pages["alice"].click('[data-preset="soft tissue"]')
            pages["alice"].wait_for_timeout(300)
            _small_png(pages["alice"].screenshot(full_page=True), out / "review_viewer.png")
            pages["alice"].keyboard.press("y")
            pages["alice"].wait_for_selector("#saved")  # alice's read is in before bob opens the breast
            pages["bob"].click("#start")
            pages["bob"].click('.task.focused form.decision-form button[value="correct:1"]')
            carol = pages["carol"]
            carol.click("#start")
            carol.wait_for_selector(".task.focused .reads")
            _settled(carol)
            _small_png(carol.screenshot(full_page=True), out / "review_adjudication.png")
            carol.click('.task.focused form.decision-form button[value="correct:1"]')
            carol.goto(f"{base}/stats")
            _small_png(carol.screenshot(full_page=True), out / "review_consensus.png")
            browser.close()
    finally:
        server.stop()
        app.state.engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/img")
