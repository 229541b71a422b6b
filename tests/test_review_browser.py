"""A real browser (Debian's Chromium via Playwright) against a real uvicorn server: sign in and
decide by keyboard and click, the viewer's window/level changes the rendered pixels, the exam's four
views hang with the prior beside them, a breast with two flagged tasks is one item with both, undo
restores the previous label, and a blinded double-read disagreement reaches the adjudicator."""

from pathlib import Path

import pytest
from sqlalchemy import select

from review_app.export import decisions_frame, effective_decisions
from review_app.sample import ServerProcess, build_sample_app
from review_app.settings import DB_ENV_VAR, DOUBLE_READ_ENV_VAR, SECRET_ENV_VAR
from review_app.storage import Decision, QueueItem, Read

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
KEY = "browser-test-site-key"
ROOT = Path(__file__).resolve().parents[1]
USERS = {"alice": "alice-password", "bob": "bob-password", "carol": "carol-password"}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed at /usr/bin/chromium "
                                                     "(apt-get install chromium; .ci/run installs it)"),
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Served:
    """A uvicorn server on its own sample home; tests address items by task, so they do not depend
    on each other's decisions (starting a server costs seconds on a loaded box: two per module)."""

    def __init__(self, root: Path, double_read: str):
        settings, self.app = build_sample_app(root, KEY.encode(), annotators=USERS, roles={"carol": "adjudicator"},
                                              image_size=(640, 480))
        env = {"MAMMO_HOME": str(settings.mammo_home), DB_ENV_VAR: settings.db_url,
               SECRET_ENV_VAR: "browser-test-secret-" + "x" * 32, "MAMMO_PSEUDONYM_KEY": KEY,
               DOUBLE_READ_ENV_VAR: double_read}
        self.server = ServerProcess(env, cwd=ROOT)
        self.base = self.server.base_url
        self.factory = self.app.state.session_factory

    def item(self, task: str) -> int:
        with self.factory() as session:
            return session.scalar(select(QueueItem.id).where(QueueItem.task == task).order_by(QueueItem.priority))

    def stop(self) -> None:
        self.server.stop()
        self.app.state.engine.dispose()


@pytest.fixture(scope="module")
def single(tmp_path_factory, cheap_argon2_module):
    served = Served(tmp_path_factory.mktemp("review-home"), "")
    yield served
    served.stop()


@pytest.fixture(scope="module")
def grouped(tmp_path_factory, cheap_argon2_module):
    served = Served(tmp_path_factory.mktemp("review-home"), "")                      # decided by one test only
    yield served
    served.stop()


@pytest.fixture(scope="module")
def double(tmp_path_factory, cheap_argon2_module):
    served = Served(tmp_path_factory.mktemp("review-home"), "0")                     # tier 0 (pathology conflicts) read twice
    yield served
    served.stop()


def signed_in(browser, base: str, name: str):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{base}/queue")
    expect(page).to_have_url(f"{base}/login?next=/queue")
    page.fill("#username", name)
    page.fill("#password", USERS[name])
    page.click("#login-form button[type=submit]")
    expect(page).to_have_url(f"{base}/queue")
    return page


def press(page, key: str) -> None:
    """A shortcut, once the page's key handling is set up (a key pressed earlier would be lost)."""
    from playwright.sync_api import expect

    expect(page.locator("html")).to_have_attribute("data-keys-ready", "1")
    page.keyboard.press(key)


def canvas_checksum(page) -> int:
    return page.evaluate("""() => {
        const c = document.querySelector('#viewer-layers canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let s = 0; for (let i = 0; i < d.length; i += 4) { s = (s + d[i] * (i % 9973 + 1)) % 2147483647; }
        return s; }""")


def test_annotator_signs_in_confirms_one_label_and_corrects_another(browser, single):
    from playwright.sync_api import expect

    base, factory = single.base, single.factory
    page = signed_in(browser, base, "alice")
    expect(page.locator("#overall")).to_contain_text("0 of 3 flagged labels decided")
    page.click("#start")
    expect(page.locator(".task.focused .task-title")).to_contain_text("Malignancy")
    expect(page.locator(".evidence-of:not([hidden]) .report-text mark").first).to_have_text("BI-RADS 5")
    press(page, "y")                                  # confirm by shortcut
    expect(page.locator("#saved")).to_contain_text("Saved: confirm")
    expect(page.locator(".task.focused .task-title")).to_contain_text("Breast density")   # same breast, next task
    page.goto(f"{base}/items/{single.item('acr')}")
    expect(page.locator(".task.focused .task-title")).to_contain_text("ACR / BI-RADS category")
    expect(page.locator(".task.focused .current-label")).to_contain_text("3")
    page.click('.task.focused form.decision-form button[value="correct:4"]')   # correct by click
    expect(page.locator(".task.focused .task-title")).to_contain_text("Breast density")  # next: the open one
    press(page, "?")
    expect(page.locator("#shortcuts")).to_be_visible()
    page.goto(f"{base}/queue")
    expect(page.locator("#overall")).to_contain_text("2 of 3 flagged labels decided")
    with factory() as session:
        made = [(d.annotator, d.task, d.decision, d.label) for d in
                session.scalars(select(Decision).where(Decision.task.in_(["breastbin", "acr"])).order_by(Decision.id))]
    assert made == [("alice", "breastbin", "confirm", "0"), ("alice", "acr", "correct", "4")]


def test_window_level_by_preset_and_by_drag_changes_the_rendered_pixels(browser, single):
    from playwright.sync_api import expect

    page = signed_in(browser, single.base, "bob")
    page.goto(f"{single.base}/items/{single.item('breastbin')}")
    viewer = page.locator("#viewer")
    expect(viewer).to_have_attribute("data-ready", "1")
    before, wl = canvas_checksum(page), (viewer.get_attribute("data-center"), viewer.get_attribute("data-width"))
    page.click('[data-preset="calcifications"]')
    expect(viewer).to_have_attribute("data-center", "48000")
    after_preset = canvas_checksum(page)
    assert after_preset != before and wl != ("48000", "20000")

    box = page.locator("#viewer-layers canvas").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 120, y + 80, steps=8)                  # drag: window/level
    page.mouse.up()
    assert viewer.get_attribute("data-center") != "48000" or viewer.get_attribute("data-width") != "20000"
    after_drag = canvas_checksum(page)
    assert after_drag != after_preset

    press(page, "i")                                  # invert
    expect(page.locator("#viewer-status")).to_contain_text("inverted")
    assert canvas_checksum(page) != after_drag


def test_a_breast_item_hangs_the_exams_four_views_with_its_breast_marked_and_the_prior_beside(browser, single):
    from playwright.sync_api import expect

    page = signed_in(browser, single.base, "bob")
    page.goto(f"{single.base}/items/{single.item('breastbin')}")   # left breast of ACC1001; PAT01 has a prior
    current = page.locator("#exam-current figure")
    expect(current).to_have_count(4)
    assert [c.strip().split()[0] for c in current.locator("figcaption").all_inner_texts()] == \
        ["R-CC", "L-CC", "R-MLO", "L-MLO"]
    assert [c.split()[0] for c in page.locator("#exam-current figure.target figcaption").all_inner_texts()] == \
        ["L-CC", "L-MLO"]
    expect(page.locator("#exam-prior figure")).to_have_count(4)
    for img in page.locator(".hanging img").element_handles():
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img)
    page.locator("#exam-current figure").nth(2).click()       # open R-MLO in the viewer
    expect(page.locator("#viewer-caption")).to_contain_text("R-MLO")
    expect(page.locator("#viewer")).to_have_attribute("data-ready", "1")


def test_a_breast_with_two_flagged_tasks_is_one_item_showing_both_and_deciding_both_stores_two(browser, grouped):
    from playwright.sync_api import expect

    base, factory = grouped.base, grouped.factory
    breastbin, density, acr = grouped.item("breastbin"), grouped.item("density"), grouped.item("acr")
    page = signed_in(browser, base, "alice")
    expect(page.locator("#items .target-row")).to_have_count(2)          # the queue: one row per breast
    page.click("#start")
    expect(page).to_have_url(f"{base}/items/{breastbin}")
    tasks = page.locator("#tasks .task")
    expect(tasks).to_have_count(2)                                       # left breast: malignancy and density
    expect(tasks.nth(0).locator(".task-title")).to_contain_text("Malignancy")
    expect(tasks.nth(0).locator(".why")).to_contain_text("pathology disagrees with the report")
    expect(tasks.nth(0).locator(".pathology")).to_contain_text("biopsy 2020-01-20: benign")
    expect(tasks.nth(1).locator(".task-title")).to_contain_text("Breast density")
    expect(tasks.nth(1).locator(".why")).to_contain_text("uncertain label")
    expect(tasks.nth(1).locator(".evidence")).to_contain_text("Density probably B-C.")
    expect(page.locator("#exam-current figure")).to_have_count(4)        # the images once, for both
    press(page, "j")                                             # highlight the density task
    expect(page.locator(".task.focused .task-title")).to_contain_text("Breast density")
    expect(page.locator(".evidence-of:not([hidden]) .report-text mark:not(.related)")).to_have_text("B-C")
    press(page, "k")                                             # and back to malignancy
    expect(page.locator(".task.focused .task-title")).to_contain_text("Malignancy")
    press(page, "y")                                             # confirm malignancy
    expect(page.locator("#saved")).to_contain_text("Saved: confirm")
    expect(page).to_have_url(f"{base}/items/{density}")                  # same breast, density highlighted
    expect(tasks).to_have_count(2)
    expect(page.locator(".task.focused .task-title")).to_contain_text("Breast density")
    expect(page.locator(f"#task-{breastbin} .status")).to_contain_text("decided")
    press(page, "3")                                             # density key 3 = C
    expect(page.locator("#saved")).to_contain_text("correct → C")
    expect(page).to_have_url(f"{base}/items/{acr}")                      # this breast is done: the next one
    expect(tasks).to_have_count(1)
    with factory() as session:
        frame = decisions_frame(session)
    rows = [(r.target_level, r.task, r.decision, r.label) for r in frame.itertuples()]
    assert rows == [("breast", "breastbin", "confirm", "0"), ("breast", "density", "correct", "C")]
    assert frame["target_key"].nunique() == 1 and len(effective_decisions(frame)) == 2


def test_undo_restores_the_previous_label(browser, single):
    from playwright.sync_api import expect

    page = signed_in(browser, single.base, "carol")
    density = single.item("density")
    page.goto(f"{single.base}/items/{density}")
    card = page.locator(f"#task-{density}")
    expect(card.locator(".current-label")).to_contain_text("B")
    page.click(f'#decision-form-{density} button[value="correct:C"]')
    expect(page.locator("#saved")).to_contain_text("correct → C")
    press(page, "z")                                  # undo from the saved notice
    expect(page.locator("#message")).to_contain_text("Undone")
    expect(page.locator(".task.focused .task-title")).to_contain_text("Breast density")
    expect(card.locator(".current-label")).to_contain_text("B")
    expect(card.locator(".status")).to_contain_text("open")
    with single.factory() as session:
        made = [(d.annotator, d.decision, d.label) for d in
                session.scalars(select(Decision).where(Decision.item_id == density).order_by(Decision.id))]
        item = session.get(QueueItem, density)
    assert made == [("carol", "correct", "C"), ("carol", "undo", "B")]
    assert (item.status, item.current_label) == ("open", "B")


def test_a_blinded_double_read_disagreement_reaches_the_adjudicator(browser, double):
    from playwright.sync_api import expect

    base, factory = double.base, double.factory
    alice = signed_in(browser, base, "alice")
    alice.click("#start")
    expect(alice.locator(".task.focused .double-read")).to_contain_text("Blinded double reading: read 0 of 2")
    press(alice, "y")                                 # alice: benign, as proposed
    bob = signed_in(browser, base, "bob")
    bob.click("#start")
    expect(bob.locator(".task.focused .double-read")).to_contain_text("read 1 of 2")
    expect(bob.locator(".reads")).to_have_count(0)            # blinded: alice's read is not shown
    bob.click('.task.focused form.decision-form button[value="correct:1"]')     # bob: malignant
    with factory() as session:
        item = session.scalar(select(QueueItem).where(QueueItem.task == "breastbin"))
        assert item.status == "disputed" and session.scalars(select(Decision)).all() == []
    carol = signed_in(browser, base, "carol")
    carol.click("#start")                                     # disputed items come first for adjudicators
    expect(carol.locator(".task.focused .double-read")).to_contain_text("adjudicate")
    expect(carol.locator(".task.focused .reads")).to_contain_text("alice")
    expect(carol.locator(".task.focused .reads")).to_contain_text("bob")
    carol.click('.task.focused form.decision-form button[value="correct:1"]')
    carol.goto(f"{base}/stats")
    expect(carol.locator("#kappa")).to_contain_text("alice · bob")
    with factory() as session:
        reads = [(r.annotator, r.label) for r in session.scalars(select(Read).order_by(Read.id))]
        decided = [(d.annotator, d.decision, d.label) for d in session.scalars(select(Decision))]
    assert reads == [("alice", "0"), ("bob", "1")] and decided == [("carol", "correct", "1")]
