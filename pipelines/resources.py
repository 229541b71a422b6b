"""Resources shared by every asset: where the data root is and the pseudonymisation key."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from curation.home import MammoHome
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


def default_resources(root: str = "") -> dict:
    """Resource keys every asset module may require: ``mammo``, ``pseudonym``, ``pipes``."""
    return {
        "mammo": MammoHomeResource(root=root),
        "pseudonym": PseudonymKeyResource(),
        # heavy work (TensorFlow training) runs in its own process so it cannot take the code server down
        "pipes": dg.PipesSubprocessClient(),
    }
