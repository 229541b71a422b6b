"""Tables of the review app (SQLAlchemy 2): annotators, queue items, append-only decisions.

SQLite is the default (one file under ``$MAMMO_HOME/review``, WAL journal so readers never
block the one writer); Postgres works by URL for a multi-site deployment.

Two rules the schema itself enforces, because a lost or rewritten decision silently changes a
training label:

* **append-only decisions** — triggers refuse UPDATE/DELETE on ``decisions`` (SQLite and
  Postgres) and an ORM guard refuses them before SQL is even sent;
* **optimistic concurrency** — every label change bumps ``queue_items.version`` and records the
  version it produced in ``decisions.resulting_version``, unique per item: two decisions can never
  both claim to have replaced the same version.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import (DDL, Boolean, DateTime, Float, ForeignKey, Integer, String, Text,
                        UniqueConstraint, create_engine, event, inspect)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from curation.tasks import DECISIONS

ROLES = ("annotator", "adjudicator", "admin")  # adjudicators settle double-read disagreements; admins also manage users


def utcnow() -> datetime:
    """Naive UTC: SQLite has no time zones, so every timestamp is UTC by convention."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(256), nullable=False)
    # part of every session cookie: rotating it (logout, new password) invalidates old cookies
    session_nonce: Mapped[str] = mapped_column(String(64), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False, default="annotator")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class QueueItem(Base):
    """One label proposed for review: (target_level, target_key, task)."""

    __tablename__ = "queue_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_key: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    priority: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    target_level: Mapped[str] = mapped_column(String(8), nullable=False)
    target_key: Mapped[str] = mapped_column(String(120), nullable=False)
    task: Mapped[str] = mapped_column(String(16), nullable=False)
    batch: Mapped[str] = mapped_column(String(120), nullable=False)
    breast_key: Mapped[str | None] = mapped_column(String(120))
    accession_key: Mapped[str | None] = mapped_column(String(64))
    proposed_label: Mapped[str | None] = mapped_column(String(16))
    proposed_u: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str | None] = mapped_column(String(64))
    rule_id: Mapped[str | None] = mapped_column(String(120))
    evidence: Mapped[str | None] = mapped_column(Text)
    span_start: Mapped[int | None] = mapped_column(Integer)
    span_end: Mapped[int | None] = mapped_column(Integer)
    report_row: Mapped[int | None] = mapped_column(Integer)  # data row of reports.csv the span is in
    related_spans: Mapped[str] = mapped_column(Text, nullable=False, default="[]")  # [[row, start, end], …]
    reasons: Mapped[str] = mapped_column(String(400), nullable=False)
    model_label: Mapped[str | None] = mapped_column(String(16))
    model_p_label: Mapped[float | None] = mapped_column(Float)
    images_json: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    # the label as it stands after the latest non-skip decision (None + decided = "unknown")
    status: Mapped[str] = mapped_column(String(8), nullable=False, default="open")
    current_label: Mapped[str | None] = mapped_column(String(16))
    current_u: Mapped[float | None] = mapped_column(Float)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    lease_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    synced_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class Decision(Base):
    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("item_id", "resulting_version", name="uq_one_decision_per_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # issued with the form, so a double-submitted form is recognised instead of stored twice
    decision_id: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    item_id: Mapped[int] = mapped_column(ForeignKey("queue_items.id"), nullable=False, index=True)
    target_level: Mapped[str] = mapped_column(String(8), nullable=False)
    target_key: Mapped[str] = mapped_column(String(120), nullable=False)
    task: Mapped[str] = mapped_column(String(16), nullable=False)
    decision: Mapped[str] = mapped_column(String(8), nullable=False)
    label: Mapped[str | None] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    annotator: Mapped[str] = mapped_column(String(64), nullable=False)
    decided_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    previous_label: Mapped[str | None] = mapped_column(String(16))
    previous_u: Mapped[float | None] = mapped_column(Float)
    base_version: Mapped[int] = mapped_column(Integer, nullable=False)
    # NULL for skip (changes nothing); NULLs never collide in a UNIQUE constraint
    resulting_version: Mapped[int | None] = mapped_column(Integer)
    app_version: Mapped[str] = mapped_column(String(32), nullable=False)
    # for decision == "undo": the decision_id it reverses (the label goes back to previous_label/u)
    reverts: Mapped[str | None] = mapped_column(String(32))


class Read(Base):
    """One blinded reading of a double-read item: stored apart from decisions until both readers
    are in; agreement then becomes one decision, disagreement sends the item to an adjudicator."""

    __tablename__ = "reads"
    __table_args__ = (UniqueConstraint("item_id", "user_id", name="uq_one_read_per_reader"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("queue_items.id"), nullable=False, index=True)
    task: Mapped[str] = mapped_column(String(16), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    annotator: Mapped[str] = mapped_column(String(64), nullable=False)
    decision: Mapped[str] = mapped_column(String(8), nullable=False)     # confirm | correct | unknown
    label: Mapped[str | None] = mapped_column(String(16))
    read_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class AppendOnlyError(RuntimeError):
    pass


_SQLITE_APPEND_ONLY = [
    "CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions "
    "BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END",
    "CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions "
    "BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END",
]
_POSTGRES_APPEND_ONLY = [
    "CREATE OR REPLACE FUNCTION review_decisions_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'decisions are append-only'; END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions "
    "FOR EACH ROW EXECUTE FUNCTION review_decisions_append_only()",
]
for _sql in _SQLITE_APPEND_ONLY:
    event.listen(Decision.__table__, "after_create", DDL(_sql).execute_if(dialect="sqlite"))
for _sql in _POSTGRES_APPEND_ONLY:
    event.listen(Decision.__table__, "after_create", DDL(_sql).execute_if(dialect="postgresql"))


@event.listens_for(Session, "before_flush")
def _refuse_decision_changes(session: Session, flush_context, instances) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, (Decision, Read)) and (obj in session.deleted or session.is_modified(obj)):
            raise AppendOnlyError("decisions are append-only: record a new decision instead of editing one")


def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoint; WAL keeps it crash-safe
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(db_url: str) -> Engine:
    """Engine for ``db_url``; for SQLite the folder is created and WAL switched on."""
    if db_url.startswith("sqlite"):
        path = db_url.split(":///", 1)[1] if ":///" in db_url else ""
        if path and path != ":memory:":
            _private_file(Path(path))
        engine = create_engine(db_url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(db_url, pool_pre_ping=True)


def _private_file(path: Path) -> None:
    """The database holds password hashes: folder 0700, file (and SQLite's -wal/-shm, which copy the
    file's mode) 0600, created so before SQLite opens it — never world-readable, whatever the umask."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if candidate.exists() and candidate.stat().st_mode & 0o077:
            candidate.chmod(0o600)


class SchemaMismatch(RuntimeError):
    pass


def init_db(engine: Engine) -> sessionmaker[Session]:
    """Create missing tables (idempotent), refuse a database of an older layout, return the session factory.

    ``create_all`` never alters an existing table, so a database written by an older app version
    would fail later on the first query that touches a new column; it is stopped here instead.
    """
    Base.metadata.create_all(engine)
    inspector = inspect(engine)
    missing = [f"{table.name}.{column.name}" for table in Base.metadata.sorted_tables
               for column in table.columns
               if column.name not in {c["name"] for c in inspector.get_columns(table.name)}]
    if missing:
        raise SchemaMismatch(
            f"the review database {engine.url.render_as_string(hide_password=True)} was created by an older "
            f"app version (missing {', '.join(missing)}): export its decisions with that version "
            "(`mammo-mtl review export`), then move the database aside and run `mammo-mtl review sync-queue`")
    return sessionmaker(engine, expire_on_commit=False)
