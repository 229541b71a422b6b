"""Deterministic synthetic mammography cohorts shaped like the paper's datasets (hmi, inb, vtb).

Synthetic data only — no patient ever contributed to it; results on it are a functional
benchmark, never a clinical claim. ``generate_cohort`` is the entry point; the modules
are named for what they model: :mod:`.plan` (clinical ground truth per patient),
:mod:`.anatomy`, :mod:`.lesions`, :mod:`.render` (pixels), :mod:`.vendors` (detector
response), :mod:`.dicom_writer`, :mod:`.reports`, :mod:`.pathology`, :mod:`.defects`,
:mod:`.truth`, :mod:`.profiles` (cohort proportions), :mod:`.cohort` (orchestration).
"""

from .cohort import CohortSummary, generate_cohort
from .profiles import COHORTS

__all__ = ["COHORTS", "CohortSummary", "generate_cohort"]
