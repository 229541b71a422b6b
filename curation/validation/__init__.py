"""Great Expectations 1.x suites for the catalogue, the labels and the manifests, and a runner
that turns a GX result into a small report (failing expectations + example rows).

Importing this package imports GX (a few seconds); import it where validation runs.
"""

from curation.validation.runner import FailedExpectation, ValidationReport, validate
from curation.validation.suites import SUITE_VERSIONS, build_suite, suite_fingerprint

__all__ = ["FailedExpectation", "ValidationReport", "validate", "SUITE_VERSIONS", "build_suite", "suite_fingerprint"]
