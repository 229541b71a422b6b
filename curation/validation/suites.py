"""The expectation suites, defined in code and versioned.

Each suite states the contract of one table in ``docs/CONTRACTS.md`` as GX 1.x expectations:
``catalog`` (catalogue), ``labels`` (long ``image_labels``) and ``manifest`` (manifest rows with
their ``cohort``/``split`` partitions). Bump a suite's version whenever an expectation changes;
the version and a fingerprint of the expectations travel into every validation result, so a
check result always says which rules it applied.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.expectations.row_conditions import Column

from curation.schemas import CATALOG_SCHEMA, IMAGE_LABELS_SCHEMA, MANIFEST_PARTITION_COLUMNS, MANIFEST_SCHEMA
from curation.split import SPLITS
from curation.tasks import LABEL_TASKS, TASKS
from curation.validation.phi import ExpectNoPhiLikeColumns
from curation.validation.weights import ExpectColumnPairValuesToSumToOne

SUITE_VERSIONS = {"catalog": "1.1", "labels": "1.1", "manifest": "1.0"}  # 1.1: columns from the schemas

# pseudonyms are HMAC prefixes (curation.pseudonym); anything else in a key column is a raw id
IMAGE_KEY = r"^I-[0-9a-f]{16}$"
PATIENT_PID = r"^P-[0-9a-f]{16}$"
BREAST_KEY = r"^[AS]-[0-9a-f]{16}:[LR]$"
# stored image sizes: tiny demo images to the largest FFDM detectors (~4000 x 5000), with margin
MIN_PIXELS, MAX_PIXELS = 32, 16384

# the columns each suite requires are the table's schema (curation/schemas.py), never a second list
CATALOG_COLUMNS = tuple(CATALOG_SCHEMA.names)
LABEL_COLUMNS = tuple(IMAGE_LABELS_SCHEMA.names)
MANIFEST_COLUMNS = tuple(MANIFEST_SCHEMA.names) + MANIFEST_PARTITION_COLUMNS
INT_TYPES = ["int8", "int16", "int32", "int64", "Int8", "Int16", "Int32", "Int64", "uint8", "uint16", "uint32",
             "uint64"]
FLOAT_TYPES = ["float32", "float64", "Float32", "Float64"]


def _label_values(task: str, as_text: bool) -> list:
    values = list(TASKS[task])
    if task == "view" and as_text:
        values.append("ML")  # the labels table may keep ML; manifests fold it into MLO
    return [str(v) for v in values] if as_text else values


def _weight_rules(label: str, u: str, weight: str) -> list:
    """Paper eq. 1-3: weight 0 exactly when the label is missing, else 1 - u (so > 0)."""
    missing, present = Column(label).is_null(), Column(label).is_not_null()
    return [
        gxe.ExpectColumnValuesToBeInTypeList(column=u, type_list=FLOAT_TYPES),
        gxe.ExpectColumnValuesToBeInTypeList(column=weight, type_list=FLOAT_TYPES),
        gxe.ExpectColumnValuesToNotBeNull(column=u, description=f"{u} is always set"),
        gxe.ExpectColumnValuesToBeBetween(column=u, min_value=0.0, max_value=1.0,
                                          description=f"{u} is an uncertainty in [0, 1]"),
        gxe.ExpectColumnValuesToBeInSet(column=weight, value_set=[0.0], row_condition=missing,
                                        description=f"{weight} is 0 when {label} is missing"),
        gxe.ExpectColumnValuesToBeBetween(column=weight, min_value=0.0, max_value=1.0, strict_min=True,
                                          row_condition=present,
                                          description=f"{weight} is > 0 when {label} is present"),
        ExpectColumnPairValuesToSumToOne(column_A=u, column_B=weight, row_condition=present,
                                         description=f"{weight} = 1 - {u} when {label} is present"),
    ]


def catalog_expectations() -> list:
    return [
        gxe.ExpectTableColumnsToMatchSet(column_set=list(CATALOG_COLUMNS), exact_match=False,
                                         description="every contract column of the catalogue is present"),
        ExpectNoPhiLikeColumns(description="no column looks like a raw identifier"),
        gxe.ExpectTableRowCountToBeBetween(min_value=1, description="the catalogue is not empty"),
        gxe.ExpectColumnValuesToNotBeNull(column="image_key"),
        gxe.ExpectColumnValuesToBeUnique(column="image_key", description="one row per image key"),
        gxe.ExpectColumnValuesToMatchRegex(column="image_key", regex=IMAGE_KEY, description="image keys are pseudonyms"),
        gxe.ExpectColumnValuesToMatchRegex(column="patient_pid", regex=PATIENT_PID,
                                           description="patient ids are pseudonyms"),
        gxe.ExpectColumnValuesToMatchRegex(column="breast_key", regex=BREAST_KEY,
                                           description="breast keys are accession/study pseudonym + L|R"),
        gxe.ExpectColumnValuesToNotBeNull(column="laterality", description="every image has a laterality"),
        gxe.ExpectColumnValuesToBeInSet(column="laterality", value_set=["L", "R"]),
        gxe.ExpectColumnValuesToBeInSet(column="view", value_set=["CC", "MLO", "ML"],
                                        description="view is CC, MLO or ML when known"),
        gxe.ExpectColumnValuesToBeInTypeList(column="rows", type_list=INT_TYPES),
        gxe.ExpectColumnValuesToBeInTypeList(column="cols", type_list=INT_TYPES),
        gxe.ExpectColumnValuesToBeBetween(column="rows", min_value=MIN_PIXELS, max_value=MAX_PIXELS,
                                          description="image height within detector bounds"),
        gxe.ExpectColumnValuesToBeBetween(column="cols", min_value=MIN_PIXELS, max_value=MAX_PIXELS,
                                          description="image width within detector bounds"),
        gxe.ExpectColumnValuesToBeBetween(column="size_bytes", min_value=1),
        gxe.ExpectColumnValuesToMatchRegex(column="sha256", regex=r"^[0-9a-f]{64}$"),
        gxe.ExpectColumnValuesToMatchRegex(column="file_key", regex=r"^F-[0-9a-f]{16}$"),
    ]


def labels_expectations() -> list:
    exps = [
        gxe.ExpectTableColumnsToMatchSet(column_set=list(LABEL_COLUMNS), exact_match=False,
                                         description="every contract column of image_labels is present"),
        ExpectNoPhiLikeColumns(description="no column looks like a raw identifier"),
        gxe.ExpectColumnValuesToNotBeNull(column="image_key"),
        gxe.ExpectColumnValuesToMatchRegex(column="image_key", regex=IMAGE_KEY, description="image keys are pseudonyms"),
        gxe.ExpectColumnValuesToBeInSet(column="task", value_set=list(LABEL_TASKS)),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["image_key", "task"],
                                            description="one row per image key and task"),
    ]
    for task in LABEL_TASKS:
        exps.append(gxe.ExpectColumnValuesToBeInSet(
            column="label", value_set=_label_values(task, as_text=True), row_condition=Column("task") == task,
            # string values: an integer 4 is not "4", so a label table with numeric labels fails here
            description=f"{task} labels are in {_label_values(task, as_text=True)}"))
    exps += _weight_rules("label", "u", "weight")
    exps.append(gxe.ExpectColumnValuesToNotBeNull(column="source", row_condition=Column("label").is_not_null(),
                                                  description="every present label names its source"))
    return exps


def manifest_expectations() -> list:
    exps = [
        gxe.ExpectTableColumnsToMatchSet(column_set=list(MANIFEST_COLUMNS), exact_match=True,
                                         description="exactly the manifest schema + cohort/split"),
        ExpectNoPhiLikeColumns(description="no column looks like a raw identifier"),
        gxe.ExpectColumnValuesToBeUnique(column="image_key", description="one row per image key"),
        gxe.ExpectColumnValuesToMatchRegex(column="image_key", regex=IMAGE_KEY),
        gxe.ExpectColumnValuesToNotBeNull(column="patient_pid"),
        gxe.ExpectColumnValuesToMatchRegex(column="patient_pid", regex=PATIENT_PID),
        gxe.ExpectColumnValuesToMatchRegex(column="breast_key", regex=BREAST_KEY),
        gxe.ExpectColumnValuesToNotBeNull(column="cache_path"),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=["test"], row_condition=Column("cohort") == "inb",
                                        description="inb is an external test cohort only"),
        gxe.ExpectColumnValuesToBeInTypeList(column="height", type_list=INT_TYPES),
        gxe.ExpectColumnValuesToBeInTypeList(column="width", type_list=INT_TYPES),
        gxe.ExpectColumnValuesToBeBetween(column="height", min_value=MIN_PIXELS, max_value=MAX_PIXELS),
        gxe.ExpectColumnValuesToBeInSet(column="width", value_set=list(range(64, MAX_PIXELS + 1, 64)),
                                        description="cached width is a multiple of 64 (5 pooling levels)"),
        gxe.ExpectColumnValuesToBeInSet(column="density_stratum", value_set=[*TASKS["density"], "unknown"]),
        gxe.ExpectColumnValuesToBeInSet(column="view_stratum", value_set=[*TASKS["view"], "unknown"]),
        gxe.ExpectColumnValuesToNotBeNull(column="vendor"),
        gxe.ExpectColumnValuesToNotBeNull(column="schema_version"),
    ]
    for task in LABEL_TASKS:
        exps.append(gxe.ExpectColumnValuesToBeInSet(column=task, value_set=_label_values(task, as_text=False),
                                                    description=f"{task} is in {list(TASKS[task])} or missing"))
        exps += _weight_rules(task, f"{task}_u", f"{task}_weight")
        exps.append(gxe.ExpectColumnValuesToNotBeNull(column=f"{task}_source",
                                                      row_condition=Column(task).is_not_null(),
                                                      description=f"every present {task} label names its source"))
    return exps


SUITES: dict[str, Callable[[], list]] = {
    "catalog": catalog_expectations,
    "labels": labels_expectations,
    "manifest": manifest_expectations,
}
# columns that identify a failing row in the examples (all pseudonymised)
KEY_COLUMNS = {"catalog": ("image_key",), "labels": ("image_key", "task"), "manifest": ("image_key", "cohort", "split")}


def build_suite(name: str, context=None) -> gx.ExpectationSuite:
    """The named suite, added to ``context`` (a fresh ephemeral one by default)."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; expected one of {sorted(SUITES)}")
    context = context or gx.get_context(mode="ephemeral")
    suite = gx.ExpectationSuite(name=f"mammo_mtl.{name}",
                                meta={"suite_version": SUITE_VERSIONS[name], "contract": "docs/CONTRACTS.md"})
    suite = context.suites.add(suite)
    for expectation in SUITES[name]():
        suite.add_expectation(expectation)
    return suite


def suite_spec(name: str) -> dict:
    """The suite as plain JSON-able data (no random ids): what a reviewer reads and a diff shows."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; expected one of {sorted(SUITES)}")
    expectations = []
    for e in SUITES[name]():
        kwargs = {k: (repr(v) if k == "row_condition" and v is not None else v)
                  for k, v in e.configuration.kwargs.items()}
        expectations.append({"type": e.expectation_type, "kwargs": kwargs, "description": e.description})
    return {"suite": f"mammo_mtl.{name}", "suite_version": SUITE_VERSIONS[name], "expectations": expectations}


def suite_fingerprint(name: str) -> str:
    """SHA-256 (16 hex) of the suite's expectations without their random ids: changes iff a rule changes."""
    spec = suite_spec(name)["expectations"]
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]
