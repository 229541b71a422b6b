"""What every route of the web app shares: settings, database, templates, image caches, and the
session helpers (CSRF token, signed-in user, saved queue filter)."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker

from curation.home import MammoHome
from review_app.accounts import LoginThrottle
from review_app.decisions import QueueFilter
from review_app.prefetch import ImageWarmer
from review_app.reports import ReportIndex
from review_app.settings import ReviewSettings
from review_app.storage import User


class LoginRequired(Exception):
    def __init__(self, next_path: str):
        self.next_path = next_path


class CsrfRejected(Exception):
    pass


def safe_next(value: str | None) -> str:
    # only local paths: an open redirect after login would hand the session to a phishing page
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/queue"


@dataclass
class WebContext:
    settings: ReviewSettings
    factory: sessionmaker[Session]
    home: MammoHome
    reports: ReportIndex
    templates: Jinja2Templates
    throttle: LoginThrottle
    images: ImageWarmer

    def page(self, request: Request, template: str, context: dict, status_code: int = 200):
        return self.templates.TemplateResponse(request, template, context, status_code=status_code)

    def error(self, request: Request, user: User | None, title: str, message: str, status_code: int):
        return self.page(request, "error.html", {"user": user, "title": title, "message": message}, status_code)

    def csrf_token(self, request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = secrets.token_urlsafe(32)
            request.session["csrf"] = token
        return token

    def check_csrf(self, request: Request, submitted: str | None) -> None:
        expected = request.session.get("csrf")
        if not expected or not submitted or not hmac.compare_digest(expected, submitted):
            raise CsrfRejected()

    def current_user(self, request: Request) -> User | None:
        uid, nonce = request.session.get("uid"), request.session.get("nonce")
        if not isinstance(uid, int) or not isinstance(nonce, str):
            return None
        with self.factory() as session:
            user = session.get(User, uid)
        if user is None or not user.active or not hmac.compare_digest(user.session_nonce, nonce):
            return None
        return user

    def require_user(self, request: Request) -> User:
        user = self.current_user(request)
        if user is None:
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(path)
        return user

    def require_admin(self, request: Request) -> User:
        user = self.require_user(request)
        if user.role != "admin":
            raise LoginRequired("/login")
        return user

    def queue_filter(self, request: Request) -> QueueFilter:
        saved_filter = request.session.get("filter") or {}
        return QueueFilter(**{k: str(saved_filter.get(k, "")) for k in ("task", "batch", "reason")})
