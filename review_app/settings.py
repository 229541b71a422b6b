"""Typed settings of the review app; a bad value fails at start-up naming the field."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from curation.home import MammoHome

DB_ENV_VAR = "MAMMO_REVIEW_DB"
SECRET_ENV_VAR = "MAMMO_REVIEW_SECRET"
DOUBLE_READ_ENV_VAR = "MAMMO_REVIEW_DOUBLE_READ_TIERS"
PREFETCH_ENV_VAR = "MAMMO_REVIEW_PREFETCH_TARGETS"


class ReviewSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    mammo_home: Path = Field(description="Data root ($MAMMO_HOME): cohorts/, cache/, labels/, review/")
    db_url: str = Field(description="SQLAlchemy URL: sqlite:///… (default, WAL) or postgresql+psycopg://…")
    secret_key: str = Field(min_length=32, description="Signs session cookies; set MAMMO_REVIEW_SECRET so "
                                                       "sessions survive a restart and several workers agree")
    session_max_age_s: int = Field(default=12 * 3600, gt=0, description="Idle sessions expire after this")
    secure_cookies: bool = Field(default=False, description="Send cookies over HTTPS only (set behind TLS)")
    preview_height: int = Field(default=1024, ge=64, le=8192, description="Served image height in pixels")
    login_max_failures: int = Field(default=5, ge=1, description="Wrong passwords before an account is paused")
    login_window_s: int = Field(default=300, ge=1, description="Window and pause for login_max_failures")
    double_read_tiers: frozenset[int] = Field(default=frozenset(), description="Reason tiers read blind by two "
                                              "annotators (e.g. {0}: pathology conflicts); a disagreement "
                                              "goes to an adjudicator")
    lease_s: int = Field(default=300, ge=0, description="How long an opened item is kept out of other "
                                                        "annotators' 'next' so two people rarely review one item")
    prefetch_targets: int = Field(default=2, ge=0, le=16, description="Queue targets (breasts or images) after "
                                  "the one served whose viewer images are built in the background, so their "
                                  "first open is a cache hit (0 = build on request only)")
    viewer_cache_items: int = Field(default=16, ge=1, le=256, description="Full-resolution viewer images kept "
                                    "in memory (about 17 MB each at 3328x2560)")

    @field_validator("db_url")
    @classmethod
    def _known_dialect(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError(f"db_url must be a sqlite:// or postgresql:// URL, got {value.split(':', 1)[0]!r}")
        return value

    @field_validator("double_read_tiers")
    @classmethod
    def _known_tiers(cls, value: frozenset[int]) -> frozenset[int]:
        bad = sorted(t for t in value if not 0 <= t <= 3)
        if bad:
            raise ValueError(f"double_read_tiers must be queue tiers 0-3, got {bad}")
        return value

    @classmethod
    def from_env(cls, db_url: str | None = None, mammo_home: str | os.PathLike | None = None,
                 **overrides) -> "ReviewSettings":
        """Defaults: ``$MAMMO_HOME/review/review.db``; secret from ``$MAMMO_REVIEW_SECRET``.

        Without a configured secret a random one is drawn, so sessions end when the server
        restarts — safe, merely inconvenient, and never a guessable default.
        """
        home = MammoHome.from_env(mammo_home)
        url = db_url or os.environ.get(DB_ENV_VAR) or default_db_url(home)
        secret = overrides.pop("secret_key", None) or os.environ.get(SECRET_ENV_VAR) or secrets.token_urlsafe(48)
        tiers = os.environ.get(DOUBLE_READ_ENV_VAR, "").strip()
        if tiers and "double_read_tiers" not in overrides:
            try:
                overrides["double_read_tiers"] = frozenset(int(t) for t in tiers.split(",") if t.strip())
            except ValueError:
                raise ValueError(f"{DOUBLE_READ_ENV_VAR} must be comma-separated tiers such as '0' or "
                                 f"'0,1', got {tiers!r}") from None
        prefetch = os.environ.get(PREFETCH_ENV_VAR, "").strip()
        if prefetch and "prefetch_targets" not in overrides:
            if not prefetch.isdigit():
                raise ValueError(f"{PREFETCH_ENV_VAR} must be a whole number of queue targets (0 = off), "
                                 f"got {prefetch!r}")
            overrides["prefetch_targets"] = int(prefetch)
        return cls(mammo_home=home.root, db_url=url, secret_key=secret, **overrides)


def default_db_url(home: MammoHome) -> str:
    return f"sqlite:///{home.review_db}"
