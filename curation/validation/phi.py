"""A GX expectation that no column *name* looks like protected health information.

Raw identifiers must never reach a table outside ``cohorts/`` (CONTRACTS: Identifiers); the
pseudonymised keys (``patient_pid``, ``accession_key``, ``*_key``) are the only patient-linked
columns allowed. A column called ``PatientName`` or ``accession_number`` in a training table
means an upstream step skipped pseudonymisation, so the suite fails on the name alone.
"""

from __future__ import annotations

import re
from typing import ClassVar

from great_expectations.expectations.expectation import BatchExpectation

# DICOM PS3.15 Annex E basic profile attributes that identify a patient, reader or site,
# as they tend to be spelled in tables (snake case, camel case, abbreviations)
PHI_NAME_PATTERNS: tuple[str, ...] = (
    r"patient_?id$", r"patient_?name", r"^name$", r"birth", r"\bdob\b", r"^dob", r"accession_?(number|no|nr|num)?$",
    r"\bmrn\b", r"^mrn", r"medical_?record", r"\bssn\b", r"social_?security", r"national_?id", r"institution",
    r"referring", r"physician", r"operator", r"address", r"phone", r"e_?mail", r"^patient_?age$", r"^patient_?sex$",
)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(name)).lower()


def phi_like_columns(columns, patterns=PHI_NAME_PATTERNS) -> list[str]:
    return [c for c in columns if any(re.search(p, _snake(c)) for p in patterns)]


class ExpectNoPhiLikeColumns(BatchExpectation):
    """Expect no column whose name matches a PHI pattern (``PatientName``, ``accession_number``, ...)."""

    patterns: list[str] = list(PHI_NAME_PATTERNS)

    metric_dependencies: ClassVar[tuple[str, ...]] = ("table.columns",)
    success_keys: ClassVar[tuple[str, ...]] = ("patterns",)
    domain_keys: ClassVar[tuple[str, ...]] = ("batch_id",)

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
        found = phi_like_columns(metrics["table.columns"], self.patterns)
        return {"success": not found, "result": {"observed_value": found}}
