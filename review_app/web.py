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
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.middleware.sessions import SessionMiddleware

from curation.home import MammoHome
from curation.pseudonym import key_from_env
from curation.tasks import TASKS
from review_app import APP_VERSION
from review_app.accounts import AccountError, LoginThrottle, authenticate, change_password, create_user, set_role
from review_app.consensus import DISPUTED, agreement, can_adjudicate, needs_double_read, reads_of
from review_app.decisions import (ConflictError, DecisionError, DecisionRequest, ItemNotFound, QueueFilter, history,
                                  next_item_id, open_items, progress, record_decision)
from review_app.images import ImageUnavailable, preview_png, resolve_cache_path
from review_app.queue import PATHOLOGY_SOURCES, REASON_TIER
from review_app.reports import ReportIndex, highlight
from review_app.settings import ReviewSettings
from review_app.storage import ROLES, QueueItem, User, init_db, make_engine
from review_app.viewer import IMPORT_MAP, IMPORT_MAP_CSP_HASH, WINDOW_PRESETS, DicomCache
from review_app.workflow import batch_progress, my_decisions, previous_item_id, undo_decision

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
    templates.env.globals.update(app_version=APP_VERSION, task_titles=TASK_TITLES, reason_text=REASON_TEXT,
                                 import_map=IMPORT_MAP, window_presets=WINDOW_PRESETS)
    dicoms = DicomCache()

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
                                    "default-src 'self'; img-src 'self'; "
                                    f"script-src 'self' {IMPORT_MAP_CSP_HASH}; style-src 'self'; "
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

    def require_admin(request: Request) -> User:
        user = require_user(request)
        if user.role != "admin":
            raise LoginRequired("/login")
        return user

    def queue_filter(request: Request) -> QueueFilter:
        saved_filter = request.session.get("filter") or {}
        return QueueFilter(**{k: str(saved_filter.get(k, "")) for k in ("task", "batch", "reason")})

    def render_item(request: Request, user: User, item_id: int, *, message: str | None = None,
                    status_code: int = 200):
        with factory() as session:
            item = session.get(QueueItem, item_id)
            if item is None:
                return templates.TemplateResponse(request, "error.html", {
                    "user": user, "title": "No such item",
                    "message": f"Queue item {item_id} does not exist."}, status_code=404)
            past = history(session, item_id)
            reads = reads_of(session, item_id)
            siblings = list(session.scalars(
                select(QueueItem).where(QueueItem.target_key == item.target_key, QueueItem.id != item.id,
                                        QueueItem.active.is_(True)).order_by(QueueItem.priority)))
        flash = request.session.pop("flash", None)
        if isinstance(flash, dict) and flash.get("item") == item_id:
            message, status_code = flash.get("message"), int(flash.get("status", status_code))
        saved = request.session.pop("saved", None)
        double = needs_double_read(item, settings.double_read_tiers)
        blinded = double and item.status == "open"
        if blinded:  # a double reader sees neither the other read nor the decisions history
            past = []
        images = json.loads(item.images_json or "[]")
        texts = []
        related = json.loads(item.related_spans or "[]")
        for report in reports.reports(item.batch, item.accession_key):
            # the mined span belongs to one report row; other reports of the study are searched
            own = item.report_row is None or item.report_row == report.row
            start, end = (item.span_start, item.span_end) if own else (None, None)
            others = tuple((s, e) for row, s, e in related if row == report.row)
            # without a mined span, search only a whole evidence sentence: a bare word ("benign") can
            # sit in the other breast's sentence, and a pathology label's evidence is not in the report
            search = item.evidence if (own and item.source not in PATHOLOGY_SOURCES and item.evidence
                                       and len(item.evidence.split()) >= 4) else None
            texts.append({"reader_level": report.reader_level, "study_date": report.study_date,
                          "segments": highlight(report.text, search, start, end, others)})
        context = {
            "user": user, "item": item, "images": images, "reports": texts,
            "report_problem": reports.problem(item.batch), "history": past, "message": message,
            "reasons": [r for r in item.reasons.split(";") if r], "csrf": csrf_token(request),
            "decision_id": secrets.token_hex(16), "classes": class_keys(item.task),
            "class_names": CLASS_NAMES.get(item.task, {}), "saved": saved,
            "pathology": item.evidence if item.source in PATHOLOGY_SOURCES else None, "blinded": blinded,
            "double": double, "reads": [] if blinded else reads, "n_reads": len(reads),
            "my_read": next((r for r in reads if r.user_id == user.id), None),
            "can_decide": item.status != DISPUTED or can_adjudicate(user), "siblings": siblings,
            "current_images": [(i, img) for i, img in enumerate(images) if img.get("exam", "current") == "current"],
            "prior_images": [(i, img) for i, img in enumerate(images) if img.get("exam") == "prior"],
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
        client = request.client.host if request.client else "unknown"
        wait = throttle.blocked_for(client, name)
        if wait > 0:
            return templates.TemplateResponse(request, "login.html", {
                "user": None, "csrf": csrf_token(request), "next": _safe_next(next),
                "error": f"Too many wrong passwords from this computer; try again in {int(wait // 60) + 1} "
                         "minute(s)."}, status_code=429)
        with factory() as session:
            user = authenticate(session, name, password)
            session.commit()
        if user is None:
            throttle.failed(client, name)
            return templates.TemplateResponse(request, "login.html", {
                "user": None, "csrf": csrf_token(request), "next": _safe_next(next),
                "error": "Wrong username or password."}, status_code=401)
        throttle.succeeded(client, name)
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
    def queue_page(request: Request, done: int = 0, task: str | None = None, batch: str | None = None,
                   reason: str | None = None):
        user = require_user(request)
        if task is not None or batch is not None or reason is not None:  # the filter form was sent
            request.session["filter"] = {"task": task if task in TASKS else "",
                                         "batch": batch or "", "reason": reason if reason in REASON_TIER else ""}
        where = queue_filter(request)
        with factory() as session:
            stats = progress(session)
            items = open_items(session, where=where)
            batches = batch_progress(session)
        mine = next((a for a in stats.annotators if a.annotator == user.username), None)
        return templates.TemplateResponse(request, "queue.html", {
            "user": user, "csrf": csrf_token(request), "stats": stats, "items": items, "mine": mine,
            "done": bool(done), "batches": batches, "saved": request.session.pop("saved", None), "where": where, "tasks": list(TASKS),
            "reasons": list(REASON_TIER)})

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
        item_id = next_item_id(factory, user, settings.lease_s, where=queue_filter(request))
        if item_id is None:
            return RedirectResponse("/queue?done=1", status_code=303)
        return RedirectResponse(f"/items/{item_id}", status_code=303)

    @app.get("/items/{item_id}")
    def item_page(request: Request, item_id: int):
        user = require_user(request)
        return render_item(request, user, item_id)

    def _image_response(item_id: int, position: int, render, media_type: str) -> Response:
        """``render(path, image)`` of the item's image at ``position`` as ``media_type``, or a plain 404."""
        with factory() as session:
            item = session.get(QueueItem, item_id)
        images = json.loads(item.images_json) if item is not None else []
        if not 0 <= position < len(images):
            return Response("no such image", status_code=404, media_type="text/plain")
        try:
            data = render(resolve_cache_path(home.cache, images[position].get("cache_path")), images[position])
        except ImageUnavailable as exc:
            return Response(str(exc), status_code=404, media_type="text/plain")
        return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/items/{item_id}/images/{position}.png")
    def item_image(request: Request, item_id: int, position: int):
        require_user(request)
        return _image_response(item_id, position, lambda path, _image: preview_png(path, settings.preview_height),
                               "image/png")

    @app.get("/items/{item_id}/images/{position}.dcm")
    def item_dicom(request: Request, item_id: int, position: int):
        """The full-resolution 16-bit image as an identifier-free DICOM for the viewer (review_app.viewer)."""
        require_user(request)
        return _image_response(item_id, position, lambda path, image: dicoms.get(path, image["image_key"]),
                               "application/dicom")

    @app.post("/items/{item_id}/decision")
    def decide(request: Request, item_id: int, action: str = Form(""), version: int = Form(-1),
               decision_id: str = Form(""), csrf_token_: str = Form("", alias="csrf_token")):
        user = require_user(request)
        check_csrf(request, csrf_token_)
        decision, _, label = action.partition(":")
        req = DecisionRequest(item_id=item_id, decision=decision, expected_version=version,
                              decision_id=decision_id, label=label or None)
        try:
            stored = record_decision(factory, user, req, settings.double_read_tiers)
        except ItemNotFound as exc:
            return templates.TemplateResponse(request, "error.html", {
                "user": user, "title": "No such item", "message": str(exc)}, status_code=404)
        except ConflictError as exc:
            # post-redirect-get: the item page shows the conflict once (409); a reload never re-posts
            request.session["flash"] = {"item": item_id, "message": str(exc), "status": 409}
            return RedirectResponse(f"/items/{item_id}?conflict=1", status_code=303)
        except DecisionError as exc:
            return render_item(request, user, item_id, message=f"Not saved: {exc}", status_code=400)
        what = decision if stored is not None or decision == "skip" else "blinded read"
        request.session["saved"] = {"item": item_id, "what": what + (f" → {label}" if label else ""),
                                    "decision_id": stored.decision_id if stored is not None and
                                    stored.annotator == user.username and decision != "skip" else None}
        return RedirectResponse("/next", status_code=303)

    @app.post("/decisions/{decision_id}/undo")
    def undo(request: Request, decision_id: str, csrf_token_: str = Form("", alias="csrf_token")):
        user = require_user(request)
        check_csrf(request, csrf_token_)
        try:
            reverted = undo_decision(factory, user, decision_id)
        except DecisionError as exc:
            return templates.TemplateResponse(request, "error.html", {
                "user": user, "title": "Not undone", "message": str(exc)}, status_code=400)
        except ConflictError as exc:
            return templates.TemplateResponse(request, "error.html", {
                "user": user, "title": "Not undone", "message": "Someone changed this item since your decision: "
                + str(exc)}, status_code=409)
        request.session["flash"] = {"item": reverted.item_id, "status": 200,
                                    "message": "Undone: the label is back to what it was before your decision."}
        return RedirectResponse(f"/items/{reverted.item_id}", status_code=303)

    @app.get("/previous")
    def previous(request: Request, current: int | None = None):
        user = require_user(request)
        with factory() as session:
            item_id = previous_item_id(session, user, current)
        return RedirectResponse(f"/items/{item_id}" if item_id else "/mine", status_code=303)

    @app.get("/mine")
    def mine_page(request: Request):
        user = require_user(request)
        with factory() as session:
            rows = my_decisions(session, user)
        return templates.TemplateResponse(request, "mine.html", {"user": user, "csrf": csrf_token(request),
                                                                 "rows": rows})

    @app.get("/stats")
    def stats_page(request: Request):
        user = require_user(request)
        with factory() as session:
            pairs = agreement(session)
            disputed = session.scalar(select(func.count()).select_from(QueueItem)
                                      .where(QueueItem.status == DISPUTED, QueueItem.active.is_(True)))
        return templates.TemplateResponse(request, "stats.html", {
            "user": user, "csrf": csrf_token(request), "pairs": pairs, "disputed": int(disputed or 0),
            "tiers": sorted(settings.double_read_tiers)})

    @app.get("/account/password")
    def password_form(request: Request):
        user = require_user(request)
        return templates.TemplateResponse(request, "password.html", {"user": user, "csrf": csrf_token(request),
                                                                     "message": None, "ok": False})

    @app.post("/account/password")
    def password_change(request: Request, current: str = Form(""), new: str = Form(""), repeat: str = Form(""),
                        csrf_token_: str = Form("", alias="csrf_token")):
        user = require_user(request)
        check_csrf(request, csrf_token_)
        try:
            if new != repeat:
                raise AccountError("the two new passwords differ")
            with factory() as session:
                changed = change_password(session, user.id, current, new)
                session.commit()
        except AccountError as exc:
            return templates.TemplateResponse(request, "password.html", {
                "user": user, "csrf": csrf_token(request), "message": str(exc), "ok": False}, status_code=400)
        request.session.update(nonce=changed.session_nonce)  # this session stays, the others end
        return templates.TemplateResponse(request, "password.html", {
            "user": user, "csrf": csrf_token(request), "message": "Password changed.", "ok": True})

    @app.get("/admin/users")
    def users_page(request: Request, message: str | None = None):
        user = require_admin(request)
        with factory() as session:
            users = list(session.scalars(select(User).order_by(User.username)))
        return templates.TemplateResponse(request, "admin.html", {
            "user": user, "csrf": csrf_token(request), "users": users, "roles": ROLES,
            "message": request.session.pop("admin_message", None)})

    @app.post("/admin/users")
    def users_change(request: Request, username: str = Form(""), password: str = Form(""),
                     role: str = Form("annotator"), action: str = Form("create"),
                     csrf_token_: str = Form("", alias="csrf_token")):
        admin = require_admin(request)
        check_csrf(request, csrf_token_)
        try:
            with factory() as session:
                if action == "create":
                    create_user(session, username.strip(), password, role=role)
                    note = f"{username.strip()} added as {role}"
                else:
                    target = session.scalar(select(User).where(User.username == username))
                    if target is None:
                        raise AccountError(f"no annotator {username!r}")
                    if target.id == admin.id and action in ("deactivate", "role"):
                        raise AccountError("an admin cannot deactivate or demote themself here")
                    if action == "deactivate":
                        target.active, target.session_nonce = False, secrets.token_hex(16)
                        note = f"{username} deactivated"
                    elif action == "activate":
                        target.active = True
                        note = f"{username} activated"
                    elif action == "role":
                        set_role(session, target, role)
                        note = f"{username} is now {role}"
                    elif action == "password":
                        create_user(session, username, password, replace=True, role=target.role)
                        note = f"new password set for {username}"
                    else:
                        raise AccountError(f"unknown action {action!r}")
                session.commit()
        except AccountError as exc:
            note = f"Not changed: {exc}"
        request.session["admin_message"] = note
        return RedirectResponse("/admin/users", status_code=303)

    return app


def app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory review_app.web:app_from_env`` (several workers, a
    process manager): settings from ``$MAMMO_HOME``, ``$MAMMO_REVIEW_DB``, ``$MAMMO_REVIEW_SECRET``."""
    return create_app(ReviewSettings.from_env())
