"""Public mammography datasets -> a cohort folder the pipeline ingests (``mammo-mtl import``).

One module per dataset; the shared cohort writer and DICOM wrapper are in :mod:`.common`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable


def importers() -> dict[str, Callable[[Path, Path], dict]]:
    """Format name -> ``import(src, out) -> summary`` (lazy imports keep the CLI start fast)."""
    from curation.importers.cbis_ddsm import import_cbis_ddsm
    from curation.importers.cdd_cesm import import_cdd_cesm
    from curation.importers.embed import import_embed
    from curation.importers.inbreast import import_inbreast
    from curation.importers.mini_mias import import_mias
    from curation.importers.vindr import import_vindr
    return {"cbis-ddsm": import_cbis_ddsm, "vindr-mammo": import_vindr, "inbreast": import_inbreast,
            "cdd-cesm": import_cdd_cesm, "mini-mias": import_mias, "embed": import_embed}


FORMATS = ("cbis-ddsm", "vindr-mammo", "inbreast", "cdd-cesm", "mini-mias", "embed")
