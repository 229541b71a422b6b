"""The Arrow schema of every table label mining writes — defined here once, imported everywhere.

The Dagster assets key rows by pseudonyms (``accession_key``, ``patient_pid``); the standalone
``mammo-mtl labels`` CLI keeps the caller's ``accession_number`` and has no patient column
(see docs/CONTRACTS.md). ``label`` is a string in the vocabulary of :mod:`curation.tasks`
("0"/"1", "1".."6", "A".."D", "CC"/"MLO"), null when missing; then ``u`` = 1 and ``weight`` = 0.
"""

from __future__ import annotations

import pyarrow as pa

PSEUDONYMISED_KEY = "accession_key"
CLI_KEY = "accession_number"

_LABEL_FIELDS = [
    ("task", pa.string()),
    ("label", pa.string()),
    ("u", pa.float64()),
    ("weight", pa.float64()),
    ("source", pa.string()),
    ("rule_id", pa.string()),
    ("evidence", pa.string()),
    ("conflict", pa.bool_()),
    ("conflict_kind", pa.string()),     # null when conflict is false, else a curation.tasks.ConflictKind value
    ("policy_version", pa.string()),
    ("label_detail", pa.string()),      # e.g. BI-RADS sub-category "4B", density range "B-C"
    ("missing_reason", pa.string()),    # why label is null (empty_report, no_density_statement, ...)
]


def report_mentions_schema(key_column: str = PSEUDONYMISED_KEY) -> pa.Schema:
    return pa.schema([
        (key_column, pa.string()),
        ("report_row", pa.int64()),          # data row of reports.csv, 0-based
        ("section", pa.string()),
        ("span_start", pa.int32()),          # char offsets into report_text (cleaning is length-preserving)
        ("span_end", pa.int32()),
        ("text", pa.string()),
        ("type", pa.string()),               # assessment | density | pathology
        ("value", pa.string()),              # "4B", "3,4B" (list), "B-C" (range), "malignant"
        ("laterality", pa.string()),         # L | R | B
        ("laterality_source", pa.string()),  # clause | sentence | section | previous_sentence | report
        ("modifiers", pa.list_(pa.string())),  # negated | uncertain | historical | hypothetical
        ("rule_id", pa.string()),
    ])


def breast_labels_schema(key_column: str = PSEUDONYMISED_KEY) -> pa.Schema:
    fields = [(key_column, pa.string())]
    if key_column == PSEUDONYMISED_KEY:
        fields.append(("patient_pid", pa.string()))
    fields += [("breast_key", pa.string()), ("laterality", pa.string())]
    return pa.schema(fields + _LABEL_FIELDS)


IMAGE_LABELS_SCHEMA = pa.schema([
    ("image_key", pa.string()),
    ("breast_key", pa.string()),
    ("accession_key", pa.string()),
    ("patient_pid", pa.string()),
    ("laterality", pa.string()),
    ("view", pa.string()),                  # the catalogue's raw view (CC, MLO, ML, XCCL, ...)
] + _LABEL_FIELDS)

REPORT_PROBLEMS_SCHEMA = pa.schema([
    ("file", pa.string()),       # reports.csv | pathology.csv | labels.csv
    ("row", pa.int64()),         # data row number when known
    ("reason", pa.string()),
])

REPORT_MENTIONS_SCHEMA = report_mentions_schema()
BREAST_LABELS_SCHEMA = breast_labels_schema()
