"""The FastAPI app: server-rendered pages, login, CSRF-checked forms, images, decisions.

``/`` and ``/healthz`` answer without login; every other page (queue, items, images,
progress) needs a signed session cookie. The annotator of a decision is always the logged-in
user — a request cannot name one. Pages never show a raw identifier: items are addressed by
database id, images by position, reports by pseudonymised accession.

The routes live in modules named for what they serve: :mod:`review_app.routes_items` (queue,
a target's page, decisions), :mod:`review_app.routes_images`, :mod:`review_app.routes_accounts`
(sign-in, password, users); :mod:`review_app.web_context` holds what they share.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker
from starlette.middleware.sessions import SessionMiddleware

from curation.home import MammoHome
from curation.pseudonym import key_from_env
from review_app import APP_VERSION
from review_app.accounts import LoginThrottle
from review_app.prefetch import ImageWarmer
from review_app.reports import ReportIndex
from review_app.routes_accounts import add_account_routes
from review_app.routes_images import add_image_routes
from review_app.routes_items import add_item_routes
from review_app.settings import ReviewSettings
from review_app.storage import init_db, make_engine
from review_app.viewer import IMPORT_MAP, IMPORT_MAP_CSP_HASH, WINDOW_PRESETS
from review_app.web_context import CsrfRejected, LoginRequired, WebContext
from review_app.wording import REASON_TEXT, TASK_TITLES

HERE = Path(__file__).parent
SESSION_COOKIE = "mammo_review"


def create_app(settings: ReviewSettings, *, pseudonym_key: bytes | None = None) -> FastAPI:
    engine = make_engine(settings.db_url)
    factory: sessionmaker[Session] = init_db(engine)
    home = MammoHome(settings.mammo_home)
    key = pseudonym_key if pseudonym_key is not None else key_from_env()[0]
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals.update(app_version=APP_VERSION, task_titles=TASK_TITLES, reason_text=REASON_TEXT,
                                 import_map=IMPORT_MAP, window_presets=WINDOW_PRESETS)
    ctx = WebContext(settings=settings, factory=factory, home=home, reports=ReportIndex(home, key),
                     templates=templates,
                     throttle=LoginThrottle(settings.login_max_failures, settings.login_window_s),
                     images=ImageWarmer(settings.preview_height, dicom_items=settings.viewer_cache_items))

    app = FastAPI(title="mammo-mtl review", version=APP_VERSION, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = factory
    app.state.images = ctx.images
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
        return ctx.error(request, None, "Form expired",
                         "The form's security token did not match this session (it expired or came from "
                         "another site). Go back, reload the page and try again.", 403)

    add_account_routes(app, ctx)
    add_item_routes(app, ctx)
    add_image_routes(app, ctx)
    return app


def app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory review_app.web:app_from_env`` (several workers, a
    process manager): settings from ``$MAMMO_HOME``, ``$MAMMO_REVIEW_DB``, ``$MAMMO_REVIEW_SECRET``."""
    return create_app(ReviewSettings.from_env())
