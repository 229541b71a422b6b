"""``mammo-mtl review …`` — run the annotator app and move data in and out of it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from curation.home import MammoHome


def register(app: typer.Typer) -> None:
    review = typer.Typer(help="Annotator review app: serve it, add annotators, sync the queue, export decisions.",
                         no_args_is_help=True)

    @review.command("serve")
    def serve(port: int = typer.Option(8008, help="TCP port"),
              host: str = typer.Option("127.0.0.1", help="Interface; 0.0.0.0 exposes it to the network"),
              db: Optional[str] = typer.Option(None, help="SQLAlchemy URL (default $MAMMO_HOME/review/review.db)"),
              secure_cookies: bool = typer.Option(False, help="Cookies over HTTPS only (behind a TLS proxy)")):
        """Start the review app (queue, item pages, decisions)."""
        import uvicorn

        from review_app.settings import SECRET_ENV_VAR, ReviewSettings
        from review_app.web import create_app
        settings = ReviewSettings.from_env(db_url=db, secure_cookies=secure_cookies)
        if not os.environ.get(SECRET_ENV_VAR):
            typer.echo(f"note: {SECRET_ENV_VAR} is not set; sessions end when the server restarts", err=True)
        if host not in ("127.0.0.1", "localhost", "::1") and not secure_cookies:
            typer.echo("warning: serving beyond localhost without --secure-cookies; put it behind TLS", err=True)
        typer.echo(f"review app on http://{host}:{port}/  (database: {_redact(settings.db_url)})")
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info")

    @review.command("add-user")
    def add_user(name: str = typer.Argument(..., help="Annotator login (a pseudonym, not a full name)"),
                 password_stdin: bool = typer.Option(False, "--password-stdin",
                                                     help="Read the password from the first line of stdin"),
                 replace: bool = typer.Option(False, help="Set a new password for an existing annotator"),
                 role: str = typer.Option("annotator", help="annotator | adjudicator (settles double-read "
                                                            "disagreements) | admin (also manages users in the app)"),
                 db: Optional[str] = typer.Option(None, help="SQLAlchemy URL")):
        """Create an annotator account (argon2-hashed password)."""
        from review_app.accounts import AccountError, create_user
        from review_app.settings import ReviewSettings
        from review_app.storage import init_db, make_engine
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        settings = ReviewSettings.from_env(db_url=db)
        engine = make_engine(settings.db_url)
        try:
            with init_db(engine)() as session:
                create_user(session, name, password, replace=replace, role=role)
                session.commit()
        except AccountError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        finally:
            engine.dispose()
        typer.echo(f"{role} {name!r} {'updated' if replace else 'created'}")

    @review.command("sync-queue")
    def sync_queue_cmd(db: Optional[str] = typer.Option(None, help="SQLAlchemy URL"),
                       u_threshold: float = typer.Option(0.5, help="Queue labels with u >= this"),
                       model_disagreement: float = typer.Option(0.9, help="Queue when a model gives >= this "
                                                                         "probability to another class"),
                       predictions: Optional[Path] = typer.Option(None, help="model.predict output (parquet)"),
                       include_missing: bool = typer.Option(False, help="Also queue missing labels"),
                       max_items: Optional[int] = typer.Option(None, help="Keep the first N items")):
        """Rebuild labels/review_queue.parquet from the label tables and load it into the app."""
        from review_app.queue import QueueConfig
        from review_app.settings import ReviewSettings
        from review_app.tables import build_queue_for_home, queue_path, sync_into_db, write_queue
        home = MammoHome.from_env().ensure()
        try:
            config = QueueConfig(u_threshold=u_threshold, model_disagreement=model_disagreement,
                                 include_missing=include_missing, max_items=max_items)
            queue, inputs = build_queue_for_home(home, config, predictions)
        except (ValueError, FileNotFoundError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        for note in inputs.notes:
            typer.echo(f"note: {note}")
        path = write_queue(queue, queue_path(home))
        result = sync_into_db(ReviewSettings.from_env(db_url=db).db_url, queue)
        typer.echo(f"{len(queue)} items -> {path}; app: {result.added} added, {result.updated} updated, "
                   f"{result.deactivated} no longer flagged")

    @review.command("export")
    def export(db: Optional[str] = typer.Option(None, help="SQLAlchemy URL"),
               out: Optional[Path] = typer.Option(None, help="Default $MAMMO_HOME/labels/adjudications.parquet")):
        """Write every decision to labels/adjudications.parquet (the label assets apply them)."""
        from review_app.export import effective_decisions
        from review_app.settings import ReviewSettings
        from review_app.tables import adjudications_path, export_adjudications
        home = MammoHome.from_env().ensure()
        path = out or adjudications_path(home)
        frame = export_adjudications(ReviewSettings.from_env(db_url=db).db_url, path)
        typer.echo(f"{len(frame)} decisions ({len(effective_decisions(frame))} in force) -> {path}")

    app.add_typer(review, name="review")


def _redact(url: str) -> str:
    # a Postgres URL may carry a password; never print it
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
