"""Review-app viewer speed: a 3328 x 2560 16-bit image, from navigation to a rendered viewer.

Builds a sample review home whose cache images are full-field size, serves it with uvicorn on
loopback, signs in with Debian's Chromium (Playwright) and times, per item: first open (the server
decodes the cache PNG and builds the identifier-free DICOM) and reopen (the DICOM is in the
server's memory cache), until ``#viewer[data-ready=1]`` — the moment dwv has drawn the image.
Also the server side alone: the ``.dcm`` request over httpx. Prints one JSON object.

    .venv/bin/python bench/bench_viewer.py [--items 4] [--height 3328 --width 2560]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=4)
    ap.add_argument("--height", type=int, default=3328)
    ap.add_argument("--width", type=int, default=2560)
    args = ap.parse_args()

    from playwright.sync_api import expect, sync_playwright

    from review_app.sample import ServerProcess, build_sample_app
    from review_app.settings import DB_ENV_VAR, SECRET_ENV_VAR
    from review_app.storage import QueueItem

    key, user, password = "viewer-bench-key", "alice", "alice-password"
    with tempfile.TemporaryDirectory(prefix="viewer-bench-") as tmp:
        t0 = time.perf_counter()
        settings, app = build_sample_app(Path(tmp) / "home", key.encode(), annotators={user: password},
                                         image_size=(args.height, args.width))
        build_s = time.perf_counter() - t0
        with app.state.session_factory() as session:
            items = list(session.scalars(select(QueueItem.id).order_by(QueueItem.priority)))[: args.items]
        server = ServerProcess({"MAMMO_HOME": str(settings.mammo_home), DB_ENV_VAR: settings.db_url,
                                SECRET_ENV_VAR: "viewer-bench-secret-" + "x" * 32, "MAMMO_PSEUDONYM_KEY": key},
                               cwd=ROOT)
        first, reopen, cpu0 = [], [], time.process_time()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()
                page.set_default_timeout(60_000)
                page.goto(f"{server.base_url}/login?next=/queue")
                page.fill("#username", user)
                page.fill("#password", password)
                page.click("#login-form button[type=submit]")
                expect(page).to_have_url(f"{server.base_url}/queue")
                cookies = {c["name"]: c["value"] for c in page.context.cookies()}
                for times in (first, reopen):
                    for iid in items:
                        start = time.perf_counter()
                        page.goto(f"{server.base_url}/items/{iid}")
                        expect(page.locator("#viewer")).to_have_attribute("data-ready", "1")
                        times.append(time.perf_counter() - start)
                browser.close()
            dcm = []
            with httpx.Client(base_url=server.base_url, cookies=cookies, timeout=60) as client:
                for iid in items:
                    start = time.perf_counter()
                    r = client.get(f"/items/{iid}/images/0.dcm")
                    dcm.append((time.perf_counter() - start, r.status_code, len(r.content)))
        finally:
            server.stop()
            app.state.engine.dispose()
    print(json.dumps({
        "image": f"{args.height}x{args.width} 16-bit", "items": len(items), "sample_build_s": round(build_s, 1),
        "first_open_s": [round(t, 2) for t in first], "reopen_s": [round(t, 2) for t in reopen],
        "first_open_median_s": round(statistics.median(first), 2), "reopen_median_s": round(statistics.median(reopen), 2),
        "dcm_request_s": [round(t, 3) for t, _, _ in dcm], "dcm_status": sorted({s for _, s, _ in dcm}),
        "dcm_mib": round(max(n for _, _, n in dcm) / 2**20, 1),
        "bench_process_cpu_s": round(time.process_time() - cpu0, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
