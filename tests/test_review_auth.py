"""Who may do what: login required, CSRF on every POST, decisions always by the signed-in annotator."""

import base64
import json

import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from sqlalchemy import select

from curation.pseudonym import DEMO_KEY
from review_app.accounts import AccountError, LoginThrottle, authenticate, create_user
from review_app.sample import CSRF_RE, build_sample_app, form_fields, login
from review_app.storage import Decision, QueueItem, User
from review_app.web import SESSION_COOKIE

KEY = DEMO_KEY.encode()
USERS = {"alice": "alice-password", "bob": "bob-password"}


@pytest.fixture(autouse=True)
def _cheap_argon2(cheap_argon2):
    """Every test here creates accounts: use the shared test-cost hasher (tests/conftest.py)."""


@pytest.fixture()
def app(tmp_path):
    return build_sample_app(tmp_path / "home", KEY, annotators=USERS)[1]


def first_item(app) -> int:
    with app.state.session_factory() as session:
        return session.scalar(select(QueueItem.id).order_by(QueueItem.priority))


def stored(app) -> list[Decision]:
    with app.state.session_factory() as session:
        return list(session.scalars(select(Decision)))


@pytest.mark.parametrize("path", ["/queue", "/next", "/items/1", "/items/1/images/0.png", "/api/progress"])
def test_every_page_but_the_landing_page_needs_login(app, path):
    response = TestClient(app).get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


def test_a_decision_without_login_is_not_stored(app):
    client = TestClient(app)
    response = client.post(f"/items/{first_item(app)}/decision", follow_redirects=False,
                           data={"action": "confirm", "version": "0", "decision_id": "a" * 32, "csrf_token": "x"})
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert stored(app) == []


def test_wrong_password_is_refused(app):
    client = TestClient(app)
    response = login(client, "alice", "not-her-password")
    assert response.status_code == 401 and "Wrong username or password" in response.text
    assert client.get("/queue", follow_redirects=False).status_code == 303


def test_repeated_wrong_passwords_pause_that_client_on_that_account_even_for_the_right_one(app):
    client = TestClient(app)
    for _ in range(5):
        assert login(client, "alice", "guess").status_code == 401
    paused = login(client, "alice", USERS["alice"])
    assert paused.status_code == 429 and "Too many wrong passwords" in paused.text
    assert login(TestClient(app), "bob", USERS["bob"]).status_code == 303   # other accounts unaffected


def test_the_real_annotator_still_signs_in_from_another_client_after_someone_elses_failures(app):
    attacker = TestClient(app, client=("203.0.113.7", 5000))
    for _ in range(6):
        assert login(attacker, "alice", "guess").status_code in (401, 429)
    assert login(attacker, "alice", USERS["alice"]).status_code == 429
    assert login(TestClient(app, client=("10.1.2.3", 5000)), "alice", USERS["alice"]).status_code == 303


def test_spraying_one_password_across_usernames_from_one_client_is_throttled(app):
    sprayer = TestClient(app, client=("203.0.113.8", 5000))
    codes = [login(sprayer, f"user{n:02d}", "Winter2026!").status_code for n in range(21)]
    assert codes[:20] == [401] * 20 and codes[20] == 429
    assert login(TestClient(app), "bob", USERS["bob"]).status_code == 303   # other clients unaffected


def test_each_failure_after_the_pause_doubles_the_next_pause():
    now = [0.0]
    throttle = LoginThrottle(max_failures=2, window_s=60, clock=lambda: now[0])
    throttle.failed("c", "alice"), throttle.failed("c", "alice")
    now[0] = 61.0
    throttle.failed("c", "alice")
    assert throttle.blocked_for("c", "alice") == 120
    throttle.succeeded("c", "alice")
    assert throttle.blocked_for("c", "alice") == 0.0


def test_login_throttle_forgets_failures_after_its_window():
    now = [0.0]
    throttle = LoginThrottle(max_failures=2, window_s=60, clock=lambda: now[0])
    throttle.failed("10.0.0.9", "alice")
    throttle.failed("10.0.0.9", "alice")
    assert throttle.blocked_for("10.0.0.9", "alice") == 60
    now[0] = 59.0
    assert throttle.blocked_for("10.0.0.9", "alice") == pytest.approx(1.0)
    now[0] = 61.0
    assert throttle.blocked_for("10.0.0.9", "alice") == 0.0


def test_login_without_csrf_token_is_rejected(app):
    client = TestClient(app)
    response = client.post("/login", data={"username": "alice", "password": USERS["alice"]})
    assert response.status_code == 403
    assert client.get("/queue", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_decision_with_missing_or_wrong_csrf_token_is_rejected(app, token):
    client = TestClient(app)
    login(client, "alice", USERS["alice"])
    iid = first_item(app)
    form = form_fields(client.get(f"/items/{iid}").text)
    if token is None:
        form.pop("csrf_token")
    else:
        form["csrf_token"] = token
    response = client.post(f"/items/{iid}/decision", data=dict(form, action="confirm"))
    assert response.status_code == 403 and "security token" in response.text
    assert stored(app) == []


def test_one_annotators_csrf_token_does_not_work_in_anothers_session(app):
    alice, bob = TestClient(app), TestClient(app)
    login(alice, "alice", USERS["alice"])
    login(bob, "bob", USERS["bob"])
    iid = first_item(app)
    bob_form = form_fields(bob.get(f"/items/{iid}").text)
    alice_token = CSRF_RE.search(alice.get("/queue").text).group(1)
    response = bob.post(f"/items/{iid}/decision", data=dict(bob_form, csrf_token=alice_token, action="confirm"))
    assert response.status_code == 403
    assert stored(app) == []


def test_the_annotator_is_the_signed_in_user_whatever_the_form_says(app):
    client = TestClient(app)
    login(client, "alice", USERS["alice"])
    iid = first_item(app)
    form = form_fields(client.get(f"/items/{iid}").text)
    client.post(f"/items/{iid}/decision", data=dict(form, action="confirm", annotator="bob", user_id="2"))
    (decision,) = stored(app)
    assert decision.annotator == "alice"


def test_a_session_cookie_forged_for_another_annotator_is_not_accepted(app):
    # Starlette's session cookie is base64(JSON) signed by itsdangerous with the app secret
    with app.state.session_factory() as session:
        bob = session.scalar(select(User).where(User.username == "bob"))
    payload = base64.b64encode(json.dumps({"uid": bob.id, "nonce": "guessed"}).encode())
    for signer in (TimestampSigner("not-the-app-secret"), TimestampSigner(app.state.settings.secret_key)):
        forged = TestClient(app)
        forged.cookies.set(SESSION_COOKIE, signer.sign(payload).decode())
        assert forged.get("/queue", follow_redirects=False).status_code == 303


def test_sign_out_ends_every_copy_of_the_session(app):
    client = TestClient(app)
    login(client, "alice", USERS["alice"])
    stolen = client.cookies.get(SESSION_COOKIE)
    token = CSRF_RE.search(client.get("/queue").text).group(1)
    assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    replay = TestClient(app)
    replay.cookies.set(SESSION_COOKIE, stolen)
    assert replay.get("/queue", follow_redirects=False).status_code == 303


def test_login_only_redirects_to_local_pages(app):
    client = TestClient(app)
    page = client.get("/login?next=https://evil.example/")
    assert 'name="next" value="/queue"' in page.text
    token = CSRF_RE.search(page.text).group(1)
    response = client.post("/login", data={"username": "alice", "password": USERS["alice"], "csrf_token": token,
                                           "next": "//evil.example/"}, follow_redirects=False)
    assert response.headers["location"] == "/queue"


def test_passwords_are_stored_as_argon2_hashes(app):
    with app.state.session_factory() as session:
        user = session.scalar(select(User).where(User.username == "alice"))
        assert user.password_hash.startswith("$argon2id$") and USERS["alice"] not in user.password_hash
        assert authenticate(session, "alice", USERS["alice"]) is not None
        assert authenticate(session, "nobody", "whatever-pw") is None
        with pytest.raises(AccountError, match="already exists"):
            create_user(session, "alice", "another-password")
        with pytest.raises(AccountError, match="at least 8"):
            create_user(session, "carol", "short")
        with pytest.raises(AccountError, match="username"):
            create_user(session, "a b", "long-enough-pw")


def test_pages_forbid_framing_and_inline_script(app):
    response = TestClient(app).get("/")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
