"""Every random choice of the generator flows from ``(seed, cohort, patient index, purpose)``.

Two properties follow and the tests rely on them:

* the same arguments give byte-identical files (no wall clock, no global RNG, no
  ``uuid4``; DICOM UIDs and dates are derived from the seed);
* patient *i* of a cohort is the same whatever ``--patients`` says, so a cohort of 50
  is the first 50 patients of a cohort of 200 (handy when a benchmark scales up).
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import numpy as np

COHORT_CODES = {"hmi": 1, "inb": 2, "vtb": 3}

# Purposes keep independent streams apart: drawing one more lesion must not shift the
# pixels' noise or the report's wording.
PURPOSE = {"plan": 1, "pixels": 2, "report": 3, "pathology": 4, "defects": 5, "phi": 6}


def rng_for(seed: int, cohort: str, patient: int, purpose: str, *extra: int) -> np.random.Generator:
    """A PCG64 generator for one (patient, purpose[, image]) — stable across numpy versions' API."""
    entropy = [int(seed) & 0xFFFFFFFF, COHORT_CODES[cohort], int(patient), PURPOSE[purpose], *map(int, extra)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


def uid_for(seed: int, cohort: str, *parts: object) -> str:
    """A DICOM UID under the ``2.25`` (UUID-derived) root: ``2.25.<decimal of 128 bits>``.

    PS3.5 B.2 allows any UUID written as a decimal integer under 2.25; hashing the seed and
    the object's position gives a UID that is unique in practice and reproducible.
    """
    text = "|".join(["mammo-mtl-demo", str(seed), cohort, *map(str, parts)])
    value = int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big")
    return f"2.25.{value}"


def day_offset(base: date, days: int) -> date:
    return base + timedelta(days=int(days))


def dicom_date(d: date) -> str:
    return d.strftime("%Y%m%d")
