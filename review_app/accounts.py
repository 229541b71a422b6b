"""Annotator accounts: argon2id password hashes, never the password itself."""

from __future__ import annotations

import re
import secrets
import threading
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from review_app.storage import User

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
MIN_PASSWORD_LENGTH = 8

_hasher = PasswordHasher()
# verified against when the user does not exist, so a login attempt costs the same either way
# and response time does not reveal which annotator names exist
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(ValueError):
    pass


def validate_username(name: str) -> str:
    if not USERNAME_RE.match(name or ""):
        raise AccountError(f"username {name!r} must be 2-64 characters: letters, digits, '.', '_' or '-', "
                           "starting with a letter or digit (use a pseudonym, not a full name)")
    return name


def create_user(session: Session, username: str, password: str, *, replace: bool = False) -> User:
    """Add an annotator (or, with ``replace``, set a new password, which also ends their sessions)."""
    validate_username(username)
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    user = session.scalar(select(User).where(User.username == username))
    if user is not None and not replace:
        raise AccountError(f"annotator {username!r} already exists; pass --replace to set a new password")
    if user is None:
        user = User(username=username, password_hash="", session_nonce="")
        session.add(user)
    user.password_hash = _hasher.hash(password)
    user.session_nonce = secrets.token_hex(16)
    user.active = True
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == (username or "")))
    if user is None or not user.active:
        try:
            _hasher.verify(_DUMMY_HASH, password or "")
        except VerificationError:
            pass
        return None
    try:
        _hasher.verify(user.password_hash, password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


class LoginThrottle:
    """Refuse sign-in to an account for ``window_s`` after ``max_failures`` wrong passwords in
    that window, so a password cannot be guessed online at argon2 speed. Per process, in memory:
    behind several workers the effective limit is ``max_failures`` per worker."""

    def __init__(self, max_failures: int = 5, window_s: float = 300.0, clock=time.monotonic):
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, username: str) -> list[float]:
        now = self._clock()
        recent = [t for t in self._failures.get(username, []) if now - t < self.window_s]
        self._failures[username] = recent
        return recent

    def blocked_for(self, username: str) -> float:
        """Seconds until ``username`` may try again (0 when not blocked)."""
        with self._lock:
            recent = self._recent(username)
            if len(recent) < self.max_failures:
                return 0.0
            return max(0.0, self.window_s - (self._clock() - recent[-self.max_failures]))

    def failed(self, username: str) -> None:
        with self._lock:
            self._recent(username).append(self._clock())

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(username, None)
