"""Review-app viewer speed: a 3328 x 2560 16-bit image, from navigation to a rendered viewer.

Builds a sample review home whose cache images are full-field size and, per round, serves it with a
fresh uvicorn process on loopback (cold image caches), signs in with Debian's Chromium (Playwright)
and times, per queue target (one page per breast or image): first open and reopen, until
``#viewer[data-ready=1]`` — the moment dwv has drawn the image. Rounds alternate the image
preparation ahead of the request on (``MAMMO_REVIEW_PREFETCH_TARGETS``, default 2) and off (0: each
image decoded when the browser asks), so before and after share one session and one machine load.
An annotator reads the queue page and each item before going on: ``--think`` seconds (the same in
both modes) pass between pages. Also the server side alone: the ``.dcm`` request over httpx.
Prints one JSON object.

    .venv/bin/python bench/bench_viewer.py [--rounds 3] [--think 2] [--height 3328 --width 2560]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def one_round(base_env: dict, targets: list[int], prefetch: int, think_s: float) -> dict:
    from playwright.sync_api import expect, sync_playwright

    from review_app.sample import ServerProcess
    from review_app.settings import PREFETCH_ENV_VAR

    server = ServerProcess({**base_env, PREFETCH_ENV_VAR: str(prefetch)}, cwd=ROOT)
    first, reopen, dcm = [], [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{server.base_url}/login?next=/queue")
            page.fill("#username", "alice")
            page.fill("#password", "alice-password")
            page.click("#login-form button[type=submit]")
            expect(page).to_have_url(f"{server.base_url}/queue")
            cookies = {c["name"]: c["value"] for c in page.context.cookies()}
            for times in (first, reopen):
                for iid in targets:
                    time.sleep(think_s)                    # reading the queue page / the previous item
                    start = time.perf_counter()
                    page.goto(f"{server.base_url}/items/{iid}")
                    expect(page.locator("#viewer")).to_have_attribute("data-ready", "1")
                    times.append(time.perf_counter() - start)
            browser.close()
        with httpx.Client(base_url=server.base_url, cookies=cookies, timeout=60) as client:
            for iid in targets:
                start = time.perf_counter()
                r = client.get(f"/items/{iid}/images/0.dcm")
                dcm.append((time.perf_counter() - start, r.status_code, len(r.content)))
    finally:
        server.stop()
    return {"first": first, "reopen": reopen, "dcm": dcm}


def summary(values: list[float]) -> dict:
    return {"median_s": round(statistics.median(values), 2), "min_s": round(min(values), 2),
            "max_s": round(max(values), 2), "all_s": [round(v, 2) for v in values]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="rounds per mode, interleaved (on, off, on, …)")
    ap.add_argument("--think", type=float, default=2.0, help="seconds between pages (the same in both modes)")
    ap.add_argument("--prefetch", type=int, default=2, help="targets prepared ahead in the 'on' rounds")
    ap.add_argument("--height", type=int, default=3328)
    ap.add_argument("--width", type=int, default=2560)
    args = ap.parse_args()

    from review_app.sample import build_sample_app
    from review_app.settings import DB_ENV_VAR, SECRET_ENV_VAR
    from review_app.storage import QueueItem

    key = "viewer-bench-key"
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="viewer-bench-") as tmp:
        t0 = time.perf_counter()
        settings, app = build_sample_app(Path(tmp) / "home", key.encode(), annotators={"alice": "alice-password"},
                                         image_size=(args.height, args.width))
        build_s = time.perf_counter() - t0
        with app.state.session_factory() as session:  # one page per target: its first (most urgent) task
            rows = session.execute(select(QueueItem.id, QueueItem.target_level, QueueItem.target_key)
                                   .order_by(QueueItem.priority)).all()
        app.state.engine.dispose()
        targets, seen = [], set()
        for iid, level, target in rows:
            if (level, target) not in seen:
                seen.add((level, target))
                targets.append(iid)
        env = {"MAMMO_HOME": str(settings.mammo_home), DB_ENV_VAR: settings.db_url,
               SECRET_ENV_VAR: "viewer-bench-secret-" + "x" * 32, "MAMMO_PSEUDONYM_KEY": key}
        runs: dict[str, list[dict]] = {"prefetch": [], "on_request": []}
        cpu0 = time.process_time()
        for _ in range(args.rounds):
            for mode, prefetch in (("prefetch", args.prefetch), ("on_request", 0)):
                runs[mode].append(one_round(env, targets, prefetch, args.think))
    out = {"image": f"{args.height}x{args.width} 16-bit", "targets": len(targets), "rounds_per_mode": args.rounds,
           "think_s": args.think, "sample_build_s": round(build_s, 1),
           "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
           "bench_process_cpu_s": round(time.process_time() - cpu0, 2)}
    for mode, rounds in runs.items():
        dcm = [d for r in rounds for d in r["dcm"]]
        out[mode] = {"first_open": summary([t for r in rounds for t in r["first"]]),
                     "reopen": summary([t for r in rounds for t in r["reopen"]]),
                     "dcm_request_s": [round(t, 3) for t, _, _ in dcm], "dcm_status": sorted({s for _, s, _ in dcm}),
                     "dcm_mib": round(max(n for _, _, n in dcm) / 2**20, 1)}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
