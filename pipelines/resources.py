"""Resources shared by every asset: where the data root is and the pseudonymisation key.

One dict per environment (``$MAMMO_ENV``): ``local`` (the default: demo key allowed, SQLite under
``$MAMMO_HOME``) and ``production`` (the key must come from ``$MAMMO_PSEUDONYM_KEY``, read through
``dg.EnvVar`` so its value is never shown in the UI or stored in run config; a missing variable fails
the run before any asset starts, naming it). The review database URL (``review_db``) is read the same way
from ``$MAMMO_REVIEW_DB`` when it is set (a PostgreSQL URL may hold a password: the UI shows the variable's
name only); unset means SQLite at ``$MAMMO_HOME/review/review.db``.
"""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

from curation.home import MammoHome
from pipelines.dask_resource import DaskResource
from curation.pseudonym import DEMO_KEY, KEY_ENV_VAR, key_from_env


class MammoHomeResource(dg.ConfigurableResource):
    """The data root (``$MAMMO_HOME``) holding cohorts/, catalog/, labels/, cache/, manifests/, models/, reports/."""

    root: str = Field(default="", description="Data root; empty means $MAMMO_HOME or ./.mammo")

    def home(self) -> MammoHome:
        return MammoHome.from_env(self.root or None).ensure()


class PseudonymKeyResource(dg.ConfigurableResource):
    """HMAC key for pseudonymising patient ids, accession numbers and UIDs.

    Set ``MAMMO_PSEUDONYM_KEY`` in production; the demo key is marked in every asset's metadata.
    """

    key: str = Field(default="", description=f"Explicit key; empty means ${KEY_ENV_VAR} or the demo key")

    def key_bytes(self) -> tuple[bytes, bool]:
        if self.key:
            return self.key.encode("utf-8"), self.key == DEMO_KEY
        return key_from_env()


class ReviewDatabaseResource(dg.ConfigurableResource):
    """The review app's database as the review assets and the sensor see it (the app itself reads the same
    ``$MAMMO_REVIEW_DB``, through ``review_app.settings``)."""

    url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite at $MAMMO_HOME/review/review.db")

    def url_for(self, home: MammoHome) -> str:
        from review_app.settings import default_db_url

        return self.url or default_db_url(home)


ENVIRONMENT_VAR = "MAMMO_ENV"


def _pseudonym_by_environment() -> dict[str, PseudonymKeyResource]:
    return {
        # $MAMMO_PSEUDONYM_KEY when set (through EnvVar: the UI shows the variable, not the key), else the demo key
        "local": PseudonymKeyResource(key=dg.EnvVar(KEY_ENV_VAR)) if os.environ.get(KEY_ENV_VAR)
        else PseudonymKeyResource(),
        "production": PseudonymKeyResource(key=dg.EnvVar(KEY_ENV_VAR)),   # unset -> the run fails naming it
    }


def default_resources(root: str = "", environment: str | None = None) -> dict:
    """Resource keys every asset module may require: ``mammo``, ``pseudonym``, ``pipes``, ``dask``, ``review_db``, for the
    environment ``environment`` (default ``$MAMMO_ENV`` or ``local``)."""
    environment = environment or os.environ.get(ENVIRONMENT_VAR) or "local"
    pseudonym = _pseudonym_by_environment()
    if environment not in pseudonym:
        raise ValueError(f"{ENVIRONMENT_VAR}={environment!r}: expected one of {sorted(pseudonym)}")
    return {
        "mammo": MammoHomeResource(root=root),
        "pseudonym": pseudonym[environment],
        # heavy work (TensorFlow training) runs in its own process so it cannot take the code server down
        "pipes": dg.PipesSubprocessClient(),
        # per-image fan-out of cataloguing/preprocessing: the local pool unless a Dask address is configured
        "dask": DaskResource(),
        "review_db": _review_db(),
    }


def _review_db() -> ReviewDatabaseResource:
    from review_app.settings import DB_ENV_VAR

    return ReviewDatabaseResource(url=dg.EnvVar(DB_ENV_VAR)) if os.environ.get(DB_ENV_VAR) else ReviewDatabaseResource()
