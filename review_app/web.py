"""The FastAPI app: server-rendered pages, login, CSRF-checked forms, images, decisions.

``/`` and ``/healthz`` answer without login; every other page (queue, items, images,
progress) needs a signed session cookie. The annotator of a decision is always the logged-in
user — a request cannot name one. Pages never show a raw identifier: items are addressed by
database id, images by position, reports by pseudonymised accession.
"""

from __future__ import annotations

import hmac
import json
import secrets
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker
from starlette.middleware.sessions import SessionMiddleware

from curation.home import MammoHome
from curation.pseudonym import key_from_env
from curation.tasks import TASKS
from review_app import APP_VERSION
from review_app.accounts import LoginThrottle, authenticate
from review_app.decisions import (ConflictError, DecisionError, DecisionRequest, ItemNotFound, history,
                                  next_item_id, open_items, progress, record_decision)
from review_app.images import ImageUnavailable, preview_png, resolve_cache_path
from review_app.queue import REASON_TIER
from review_app.reports import ReportIndex, highlight
from review_app.settings import ReviewSettings
from review_app.storage import QueueItem, User, init_db, make_engine

HERE = Path(__file__).parent
SESSION_COOKIE = "mammo_review"

CLASS_NAMES: dict[str, dict[str, str]] = {
    "breastbin": {"0": "benign / normal", "1": "malignant"},
    "acr": {str(c): f"BI-RADS {c}" for c in TASKS["acr"]},
    "density": {"A": "almost entirely fatty", "B": "scattered fibroglandular",
                "C": "heterogeneously dense", "D": "extremely dense"},
    "view": {"CC": "cranio-caudal", "MLO": "medio-lateral oblique (or ML)"},
}
TASK_TITLES = {"breastbin": "Malignancy", "acr": "ACR / BI-RADS category", "density": "Breast density",
               "view": "View position"}
REASON_TEXT = {
    "report_vs_pathology": "pathology disagrees with the report",
    "unattached_pathology": "pathology could not be attached to an exam",
    "two_readers": "two readers disagree",
    "report_vs_dicom_tag": "report disagrees with a DICOM tag",
    "dicom_tag_conflict": "DICOM tags disagree",
    "orientation_disagreement": "image orientation disagrees with the laterality tag",
    "label_conflict": "conflicting label sources",
    "model_disagreement": "the model strongly disagrees",
    "high_uncertainty": "uncertain label",
}
if set(REASON_TEXT) != set(REASON_TIER):  # a new queue reason must get words an annotator reads
    raise RuntimeError(f"REASON_TEXT and queue.REASON_TIER differ: {set(REASON_TEXT) ^ set(REASON_TIER)}")


class LoginRequired(Exception):
    def __init__(self, next_path: str):
        self.next_path = next_path


class CsrfRejected(Exception):
    pass


def class_keys(task: str) -> list[tuple[str, str, str]]:
    """(key, class value, name) per class: the value itself when it is one digit (breastbin
    0/1, ACR 1–6, matching how readers say them), else its 1-based position."""
    classes = [str(c) for c in TASKS[task]]
    single_digits = all(len(c) == 1 and c.isdigit() for c in classes)
    return [(c if single_digits else str(i + 1), c, CLASS_NAMES[task].get(c, c)) for i, c in enumerate(classes)]


def _safe_next(value: str | None) -> str:
    # only local paths: an open redirect after login would hand the session to a phishing page
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/queue"


def create_app(settings: ReviewSettings, *, pseudonym_key: bytes | None = None) -> FastAPI:
    engine = make_engine(settings.db_url)
    factory: sessionmaker[Session] = init_db(engine)
    home = MammoHome(settings.mammo_home)
    key = pseudonym_key if pseudonym_key is not None else key_from_env()[0]
    reports = ReportIndex(home, key)
    throttle = LoginThrottle(settings.login_max_failures, settings.login_window_s)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals.update(app_version=APP_VERSION, task_titles=TASK_TITLES, reason_text=REASON_TEXT)

    app = FastAPI(title="mammo-mtl review", version=APP_VERSION, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = factory
    app.add_middleware(SessionMiddleware, secret_key=settings.secret_key, session_cookie=SESSION_COOKIE,
                       max_age=settings.session_max_age_s, same_site="lax", https_only=settings.secure_cookies)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; img-src 'self'; script-src 'self'; style-src 'self'; "
                                    "frame-ancestors 'none'; form-action 'self'")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(LoginRequired)
    async def _to_login(request: Request, exc: LoginRequired):
        return RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", status_code=303)

    @app.exception_handler(CsrfRejected)
    async def _csrf(request: Request, exc: CsrfRejected):
        return templates.TemplateResponse(
            request, "error.html", {"user": None, "title": "Form expired",
                                    "message": "The form's security token did not match this session "
                                               "(it expired or came from another site). Go back, reload "
                                               "the page and try again."}, status_code=403)

    # ---- helpers ------------------------------------------------------------------------
    def csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = secrets.token_urlsafe(32)
            request.session["csrf"] = token
        return token

    def check_csrf(request: Request, submitted: str | None) -> None:
        expected = request.session.get("csrf")
        if not expected or not submitted or not hmac.compare_digest(expected, submitted):
            raise CsrfRejected()

    def current_user(request: Request) -> User | None:
        uid, nonce = request.session.get("uid"), request.session.get("nonce")
        if not isinstance(uid, int) or not isinstance(nonce, str):
            return None
        with factory() as session:
            user = session.get(User, uid)
        if user is None or not user.active or not hmac.compare_digest(user.session_nonce, nonce):
            return None
        return user

    def require_user(request: Request) -> User:
        user = current_user(request)
        if user is None:
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(path)
        return user

    def render_item(request: Request, user: User, item_id: int, *, message: str | None = None,
                    status_code: int = 200):
        with factory() as session:
            item = session.get(QueueItem, item_id)
            if item is None:
                return templates.TemplateResponse(request, "error.html", {
                    "user": user, "title": "No such item",
                    "message": f"Queue item {item_id} does not exist."}, status_code=404)
            past = history(session, item_id)
        images = json.loads(item.images_json or "[]")
        texts = []
        related = json.loads(item.related_spans or "[]")
        for report in reports.reports(item.batch, item.accession_key):
            # the mined span belongs to one report row; other reports of the study are searched
            own = item.report_row is None or item.report_row == report.row
            start, end = (item.span_start, item.span_end) if own else (None, None)
            others = tuple((s, e) for row, s, e in related if row == report.row)
            texts.append({"reader_level": report.reader_level, "study_date": report.study_date,
                          "segments": highlight(report.text, item.evidence, start, end, others)})
        context = {
            "user": user, "item": item, "images": images, "reports": texts,
            "report_problem": reports.problem(item.batch), "history": past, "message": message,
            "reasons": [r for r in item.reasons.split(";") if r], "csrf": csrf_token(request),
            "decision_id": secrets.token_hex(16), "classes": class_keys(item.task),
            "class_names": CLASS_NAMES.get(item.task, {}),
        }
        return templates.TemplateResponse(request, "item.html", context, status_code=status_code)

    # ---- public -------------------------------------------------------------------------
    @app.get("/")
    def index(request: Request):
        return templates.TemplateResponse(request, "index.html",
                                          {"user": current_user(request), "csrf": csrf_token(request)})

    @app.get("/healthz")
    def healthz():
        return {"status": "ok", "version": APP_VERSION}

    @app.get("/login")
    def login_form(request: Request, next: str = "/queue"):
        return templates.TemplateResponse(request, "login.html", {
            "user": None, "csrf": csrf_token(request), "next": _safe_next(next), "error": None})

    @app.post("/login")
    def login(request: Request, username: str = Form(""), password: str = Form(""),
              csrf_token_: str = Form("", alias="csrf_token"), next: str = Form("/queue")):
        check_csrf(request, csrf_token_)
        name = username.strip()
        wait = throttle.blocked_for(name)
        if wait > 0:
            return templates.TemplateResponse(request, "login.html", {
                "user": None, "csrf": csrf_token(request), "next": _safe_next(next),
                "error": f"Too many wrong passwords for this account; try again in {int(wait // 60) + 1} "
                         "minute(s)."}, status_code=429)
        with factory() as session:
            user = authenticate(session, name, password)
            session.commit()
        if user is None:
            throttle.failed(name)
            return templates.TemplateResponse(request, "login.html", {
                "user": None, "csrf": csrf_token(request), "next": _safe_next(next),
                "error": "Wrong username or password."}, status_code=401)
        throttle.succeeded(name)
        request.session.clear()  # a fresh session (and CSRF token) per login
        request.session.update(uid=user.id, nonce=user.session_nonce, csrf=secrets.token_urlsafe(32))
        return RedirectResponse(_safe_next(next), status_code=303)

    # ---- annotators ---------------------------------------------------------------------
    @app.post("/logout")
    def logout(request: Request, csrf_token_: str = Form("", alias="csrf_token")):
        check_csrf(request, csrf_token_)
        user = current_user(request)
        if user is not None:
            with factory() as session:
                db_user = session.get(User, user.id)
                db_user.session_nonce = secrets.token_hex(16)  # ends this annotator's other cookies too
                session.commit()
        request.session.clear()
        return RedirectResponse("/", status_code=303)

    @app.get("/queue")
    def queue_page(request: Request, done: int = 0):
        user = require_user(request)
        with factory() as session:
            stats = progress(session)
            items = open_items(session)
        mine = next((a for a in stats.annotators if a.annotator == user.username), None)
        return templates.TemplateResponse(request, "queue.html", {
            "user": user, "csrf": csrf_token(request), "stats": stats, "items": items, "mine": mine,
            "done": bool(done)})

    @app.get("/api/progress")
    def progress_json(request: Request):
        require_user(request)
        with factory() as session:
            stats = progress(session)
        return JSONResponse({
            "items": stats.items, "open": stats.open, "decided": stats.decided,
            "annotators": [{"annotator": a.annotator, "confirm": a.confirm, "correct": a.correct,
                            "unknown": a.unknown, "skip": a.skip} for a in stats.annotators]})

    @app.get("/next")
    def next_item(request: Request):
        user = require_user(request)
        item_id = next_item_id(factory, user, settings.lease_s)
        if item_id is None:
            return RedirectResponse("/queue?done=1", status_code=303)
        return RedirectResponse(f"/items/{item_id}", status_code=303)

    @app.get("/items/{item_id}")
    def item_page(request: Request, item_id: int):
        user = require_user(request)
        return render_item(request, user, item_id)

    @app.get("/items/{item_id}/images/{position}.png")
    def item_image(request: Request, item_id: int, position: int):
        require_user(request)
        with factory() as session:
            item = session.get(QueueItem, item_id)
        images = json.loads(item.images_json) if item is not None else []
        if not 0 <= position < len(images):
            return Response("no such image", status_code=404, media_type="text/plain")
        try:
            path = resolve_cache_path(home.cache, images[position].get("cache_path"))
            data = preview_png(path, settings.preview_height)
        except ImageUnavailable as exc:
            return Response(str(exc), status_code=404, media_type="text/plain")
        return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    @app.post("/items/{item_id}/decision")
    def decide(request: Request, item_id: int, action: str = Form(""), version: int = Form(-1),
               decision_id: str = Form(""), csrf_token_: str = Form("", alias="csrf_token")):
        user = require_user(request)
        check_csrf(request, csrf_token_)
        decision, _, label = action.partition(":")
        req = DecisionRequest(item_id=item_id, decision=decision, expected_version=version,
                              decision_id=decision_id, label=label or None)
        try:
            record_decision(factory, user, req)
        except ItemNotFound as exc:
            return templates.TemplateResponse(request, "error.html", {
                "user": user, "title": "No such item", "message": str(exc)}, status_code=404)
        except ConflictError as exc:
            return render_item(request, user, item_id, message=str(exc), status_code=409)
        except DecisionError as exc:
            return render_item(request, user, item_id, message=f"Not saved: {exc}", status_code=400)
        return RedirectResponse("/next", status_code=303)

    return app


def app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory review_app.web:app_from_env`` (several workers, a
    process manager): settings from ``$MAMMO_HOME``, ``$MAMMO_REVIEW_DB``, ``$MAMMO_REVIEW_SECRET``."""
    return create_app(ReviewSettings.from_env())
