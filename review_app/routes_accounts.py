"""Routes for signing in and out, one's own password, and the admin's user management."""

from __future__ import annotations

import secrets

from fastapi import FastAPI, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from review_app import APP_VERSION
from review_app.accounts import AccountError, authenticate, change_password, create_user, set_role
from review_app.storage import ROLES, User
from review_app.web_context import WebContext, safe_next


def add_account_routes(app: FastAPI, ctx: WebContext) -> None:
    factory = ctx.factory

    @app.get("/")
    def index(request: Request):
        return ctx.page(request, "index.html", {"user": ctx.current_user(request), "csrf": ctx.csrf_token(request)})

    @app.get("/healthz")
    def healthz():
        return {"status": "ok", "version": APP_VERSION}

    def login_page(request: Request, next_path: str, error: str | None, status_code: int = 200):
        return ctx.page(request, "login.html", {"user": None, "csrf": ctx.csrf_token(request),
                                                "next": safe_next(next_path), "error": error}, status_code)

    @app.get("/login")
    def login_form(request: Request, next: str = "/queue"):
        return login_page(request, next, None)

    @app.post("/login")
    def login(request: Request, username: str = Form(""), password: str = Form(""),
              csrf_token_: str = Form("", alias="csrf_token"), next: str = Form("/queue")):
        ctx.check_csrf(request, csrf_token_)
        name = username.strip()
        client = request.client.host if request.client else "unknown"
        wait = ctx.throttle.blocked_for(client, name)
        if wait > 0:
            return login_page(request, next, f"Too many wrong passwords from this computer; try again in "
                                             f"{int(wait // 60) + 1} minute(s).", 429)
        with factory() as session:
            user = authenticate(session, name, password)
            session.commit()
        if user is None:
            ctx.throttle.failed(client, name)
            return login_page(request, next, "Wrong username or password.", 401)
        ctx.throttle.succeeded(client, name)
        request.session.clear()  # a fresh session (and CSRF token) per login
        request.session.update(uid=user.id, nonce=user.session_nonce, csrf=secrets.token_urlsafe(32))
        return RedirectResponse(safe_next(next), status_code=303)

    @app.post("/logout")
    def logout(request: Request, csrf_token_: str = Form("", alias="csrf_token")):
        ctx.check_csrf(request, csrf_token_)
        user = ctx.current_user(request)
        if user is not None:
            with factory() as session:
                db_user = session.get(User, user.id)
                db_user.session_nonce = secrets.token_hex(16)  # ends this annotator's other cookies too
                session.commit()
        request.session.clear()
        return RedirectResponse("/", status_code=303)

    @app.get("/account/password")
    def password_form(request: Request):
        user = ctx.require_user(request)
        return ctx.page(request, "password.html", {"user": user, "csrf": ctx.csrf_token(request),
                                                   "message": None, "ok": False})

    @app.post("/account/password")
    def password_change(request: Request, current: str = Form(""), new: str = Form(""), repeat: str = Form(""),
                        csrf_token_: str = Form("", alias="csrf_token")):
        user = ctx.require_user(request)
        ctx.check_csrf(request, csrf_token_)
        try:
            if new != repeat:
                raise AccountError("the two new passwords differ")
            with factory() as session:
                changed = change_password(session, user.id, current, new)
                session.commit()
        except AccountError as exc:
            return ctx.page(request, "password.html", {"user": user, "csrf": ctx.csrf_token(request),
                                                       "message": str(exc), "ok": False}, 400)
        request.session.update(nonce=changed.session_nonce)  # this session stays, the others end
        return ctx.page(request, "password.html", {"user": user, "csrf": ctx.csrf_token(request),
                                                   "message": "Password changed.", "ok": True})

    @app.get("/admin/users")
    def users_page(request: Request, message: str | None = None):
        user = ctx.require_admin(request)
        with factory() as session:
            users = list(session.scalars(select(User).order_by(User.username)))
        return ctx.page(request, "admin.html", {"user": user, "csrf": ctx.csrf_token(request), "users": users,
                                                "roles": ROLES, "message": request.session.pop("admin_message", None)})

    @app.post("/admin/users")
    def users_change(request: Request, username: str = Form(""), password: str = Form(""),
                     role: str = Form("annotator"), action: str = Form("create"),
                     csrf_token_: str = Form("", alias="csrf_token")):
        admin = ctx.require_admin(request)
        ctx.check_csrf(request, csrf_token_)
        try:
            with factory() as session:
                note = _change_user(session, admin, username, password, role, action)
                session.commit()
        except AccountError as exc:
            note = f"Not changed: {exc}"
        request.session["admin_message"] = note
        return RedirectResponse("/admin/users", status_code=303)


def _change_user(session, admin: User, username: str, password: str, role: str, action: str) -> str:
    """Apply one admin action; returns the notice shown on the users page."""
    if action == "create":
        create_user(session, username.strip(), password, role=role)
        return f"{username.strip()} added as {role}"
    target = session.scalar(select(User).where(User.username == username))
    if target is None:
        raise AccountError(f"no annotator {username!r}")
    if target.id == admin.id and action in ("deactivate", "role"):
        raise AccountError("an admin cannot deactivate or demote themself here")
    if action == "deactivate":
        target.active, target.session_nonce = False, secrets.token_hex(16)
        return f"{username} deactivated"
    if action == "activate":
        target.active = True
        return f"{username} activated"
    if action == "role":
        set_role(session, target, role)
        return f"{username} is now {role}"
    if action == "password":
        create_user(session, username, password, replace=True, role=target.role)
        return f"new password set for {username}"
    raise AccountError(f"unknown action {action!r}")
