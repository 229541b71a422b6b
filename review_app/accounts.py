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

from review_app.storage import ROLES, User

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


def create_user(session: Session, username: str, password: str, *, replace: bool = False,
                role: str = "annotator") -> User:
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
    if role not in ROLES:
        raise AccountError(f"role must be one of {list(ROLES)}, got {role!r}")
    user.role = role
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


def change_password(session: Session, user_id: int, current: str, new: str) -> User:
    """The signed-in user's own password change: the current one is required; other sessions end."""
    user = session.get(User, user_id)
    if user is None:
        raise AccountError("no such account")
    try:
        _hasher.verify(user.password_hash, current or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise AccountError("the current password is wrong") from None
    if len(new or "") < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    user.password_hash = _hasher.hash(new)
    user.session_nonce = secrets.token_hex(16)
    session.flush()
    return user


def set_role(session: Session, user: User, role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"role must be one of {list(ROLES)}, got {role!r}")
    user.role = role
    session.flush()


class LoginThrottle:
    """Throttle wrong passwords per (client, account) and per client, with exponential back-off.

    * a (client, account) pair is paused after ``max_failures`` wrong passwords in ``window_s``,
      then for twice as long after each further failure (capped at 64 windows) — online guessing at
      argon2 speed is hopeless, yet the real annotator signing in from another client is unaffected;
    * a client is paused after ``client_factor × max_failures`` failures across any usernames, so
      spraying one password over many accounts is limited too.

    Per process, in memory: behind several workers the limits hold per worker.
    """

    def __init__(self, max_failures: int = 5, window_s: float = 300.0, clock=time.monotonic,
                 client_factor: int = 4, max_backoff_windows: int = 64):
        self.max_failures = max_failures
        self.window_s = window_s
        self.client_limit = max_failures * client_factor
        self.max_backoff = window_s * max(1, max_backoff_windows)
        self._clock = clock
        self._failures: dict[tuple, list[float]] = {}
        self._lock = threading.Lock()

    def _wait(self, key: tuple, limit: int) -> float:
        # failures since the last success, forgotten after the longest pause
        now = self._clock()
        recent = [t for t in self._failures.get(key, []) if now - t < self.max_backoff]
        self._failures[key] = recent
        if len(recent) < limit:
            return 0.0
        pause = min(self.window_s * 2 ** (len(recent) - limit), self.max_backoff)
        return max(0.0, recent[-1] + pause - now)

    def blocked_for(self, client: str, username: str) -> float:
        """Seconds until ``client`` may try ``username`` again (0 when not blocked)."""
        with self._lock:
            return max(self._wait(("pair", client, username), self.max_failures),
                       self._wait(("client", client), self.client_limit))

    def failed(self, client: str, username: str) -> None:
        now = self._clock()
        with self._lock:
            self._failures.setdefault(("pair", client, username), []).append(now)
            self._failures.setdefault(("client", client), []).append(now)

    def succeeded(self, client: str, username: str) -> None:
        with self._lock:
            self._failures.pop(("pair", client, username), None)
