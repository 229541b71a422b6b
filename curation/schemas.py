"""The Arrow schema of every table under ``$MAMMO_HOME`` — one place to find every table's columns.

Writers pass these schemas to :mod:`curation.parquet_io`; readers, the GX suites
(:mod:`curation.validation.suites`) and the docs take their column lists from them, so a column
added here is added everywhere. The label tables are defined beside the miner
(:mod:`label_mining.schemas`) and re-exported here. Where each table lives: :mod:`curation.home`.

=======================  ===============================================  =========================
table                    path (``MammoHome`` method)                      schema
=======================  ===============================================  =========================
catalogue                ``catalog/<batch>/catalog.parquet``              :data:`CATALOG_SCHEMA`
ingest quarantine        ``catalog/<batch>/quarantine.parquet``           :data:`QUARANTINE_SCHEMA`
file keys (PHI)          ``private/file_keys/<batch>.parquet``            :data:`FILE_KEYS_SCHEMA`
cache index              ``cache/<batch>/index.parquet``                  :data:`CACHE_INDEX_SCHEMA`
cache quarantine         ``cache/<batch>/quarantine.parquet``             :data:`CACHE_QUARANTINE_SCHEMA`
report mentions          ``labels/<batch>/report_mentions.parquet``       :data:`REPORT_MENTIONS_SCHEMA`
breast labels            ``labels/<batch>/breast_labels.parquet``         :data:`BREAST_LABELS_SCHEMA`
image labels             ``labels/<batch>/image_labels.parquet``          :data:`IMAGE_LABELS_SCHEMA`
report problems          ``labels/<batch>/label_problems.parquet``        :data:`REPORT_PROBLEMS_SCHEMA`
review queue             ``labels/review_queue.parquet``                  :data:`REVIEW_QUEUE_SCHEMA`
adjudications            ``labels/adjudications.parquet``                 :data:`ADJUDICATIONS_SCHEMA`
manifests                ``manifests/cohort=<c>/split=<s>/part-0.parquet``  :data:`MANIFEST_SCHEMA`
excluded images          ``manifests_meta/excluded.parquet``              :data:`EXCLUDED_SCHEMA`
dataset card             ``manifests_meta/dataset_card.parquet``          :data:`DATASET_CARD_SCHEMA`
training runs            ``models/runs.parquet``                          :data:`RUNS_SCHEMA`
generator truth          ``cohorts/<batch>/truth.parquet`` (tests only)   :data:`TRUTH_SCHEMA`
=======================  ===============================================  =========================
"""

from __future__ import annotations

import pyarrow as pa

from curation.tasks import LABEL_TASKS, TASKS
from label_mining.schemas import (BREAST_LABELS_SCHEMA, IMAGE_LABELS_SCHEMA, REPORT_MENTIONS_SCHEMA,
                                  REPORT_PROBLEMS_SCHEMA, breast_labels_schema, report_mentions_schema)

__all__ = [
    "CATALOG_SCHEMA", "QUARANTINE_SCHEMA", "FILE_KEYS_SCHEMA", "CACHE_INDEX_SCHEMA", "CACHE_QUARANTINE_SCHEMA",
    "REPORT_MENTIONS_SCHEMA", "BREAST_LABELS_SCHEMA", "IMAGE_LABELS_SCHEMA", "REPORT_PROBLEMS_SCHEMA",
    "breast_labels_schema", "report_mentions_schema", "REVIEW_QUEUE_SCHEMA", "ADJUDICATIONS_SCHEMA",
    "MANIFEST_SCHEMA", "MANIFEST_SCHEMA_VERSION", "MANIFEST_PARTITION_COLUMNS", "EXCLUDED_SCHEMA",
    "DATASET_CARD_SCHEMA", "RUNS_SCHEMA", "TRUTH_SCHEMA", "TABLES",
]

# --- ingest ------------------------------------------------------------------------------------------
CATALOG_SCHEMA = pa.schema([
    ("image_key", pa.string()),
    ("batch", pa.string()),
    ("cohort", pa.string()),
    ("patient_pid", pa.string()),
    ("accession_key", pa.string()),
    ("study_key", pa.string()),
    ("series_key", pa.string()),
    ("breast_key", pa.string()),
    ("laterality", pa.string()),
    ("laterality_source", pa.string()),
    ("laterality_conflict", pa.bool_()),
    ("laterality_votes", pa.string()),   # every tag that spoke, normalised: "ImageLaterality=L; SeriesDescription=R"
    ("view", pa.string()),
    ("view_source", pa.string()),
    ("view_conflict", pa.bool_()),
    ("view_votes", pa.string()),         # "ViewPosition=CC; SeriesDescription=MLO" (codes only, never free text)
    ("view_type", pa.string()),          # "screening" or a kept non-screening kind (curation/view_types.py)
    ("manufacturer", pa.string()),
    ("model", pa.string()),
    ("rows", pa.int32()),
    ("cols", pa.int32()),
    ("bits_stored", pa.int16()),
    ("photometric_interpretation", pa.string()),
    ("transfer_syntax", pa.string()),
    ("presentation_intent", pa.string()),
    ("sop_class", pa.string()),
    ("study_date", pa.string()),
    ("file_key", pa.string()),           # pseudonymous (curation.pseudonym.file_key); raw path: private lookup
    ("sha256", pa.string()),
    ("size_bytes", pa.int64()),
])

QUARANTINE_SCHEMA = pa.schema([
    ("batch", pa.string()),
    ("file_key", pa.string()),
    ("stage", pa.string()),
    ("reason_code", pa.string()),
    ("message", pa.string()),
    ("sha256", pa.string()),
])

# the private lookup file_key -> raw relative path (PHI: skipped by the PHI audit like cohorts/)
FILE_KEYS_SCHEMA = pa.schema([("file_key", pa.string()), ("batch", pa.string()), ("rel_path", pa.binary()),
                              ("rel_path_text", pa.string())])

# --- preprocessing -----------------------------------------------------------------------------------
CACHE_INDEX_SCHEMA = pa.schema([
    ("image_key", pa.string()),
    ("file_key", pa.string()),           # pseudonymous key of the source file (no raw path: it is PHI)
    ("cache_path", pa.string()),         # relative to the cache root
    ("height", pa.int32()),
    ("width", pa.int32()),               # padded width, a multiple of pad_multiple
    ("content_width", pa.int32()),       # width before padding
    ("crop_x0", pa.int32()), ("crop_y0", pa.int32()),   # original pixels, before any flip,
    ("crop_x1", pa.int32()), ("crop_y1", pa.int32()),   # x1/y1 exclusive
    ("flipped", pa.bool_()),
    ("orientation_disagreement", pa.bool_()),
    ("laterality_tag", pa.string()),     # L/R from catalogue/header, null if absent
    ("laterality_pixels", pa.string()),  # L/R from where the tissue is, null if undecided
    ("voi_source", pa.string()),
    ("background_level", pa.float32()),
    ("breast_fraction", pa.float32()),
    ("n_objects", pa.int32()),           # objects above threshold; > 1 means something was removed
    ("config_hash", pa.string()),
    ("sha256", pa.string()),
])

CACHE_QUARANTINE_SCHEMA = pa.schema([
    ("batch", pa.string()),
    ("image_key", pa.string()),
    ("file_key", pa.string()),
    ("stage", pa.string()),
    ("reason_code", pa.string()),
    ("message", pa.string()),
    ("sha256", pa.string()),
])

# --- review ------------------------------------------------------------------------------------------
REVIEW_QUEUE_SCHEMA = pa.schema([
    ("priority", pa.int32()),
    ("item_key", pa.string()),
    ("target_level", pa.string()),
    ("target_key", pa.string()),
    ("task", pa.string()),
    ("batch", pa.string()),
    ("breast_key", pa.string()),
    ("accession_key", pa.string()),
    ("label", pa.string()),
    ("u", pa.float64()),
    ("source", pa.string()),
    ("rule_id", pa.string()),
    ("evidence", pa.string()),
    ("span_start", pa.int64()),
    ("span_end", pa.int64()),
    ("report_row", pa.int64()),
    ("related_spans", pa.string()),
    ("reasons", pa.string()),
    ("tier", pa.int8()),
    ("model_label", pa.string()),
    ("model_p_label", pa.float64()),
    ("images_json", pa.string()),
])

ADJUDICATIONS_SCHEMA = pa.schema([
    ("decision_id", pa.string()),
    ("target_level", pa.string()),
    ("target_key", pa.string()),
    ("task", pa.string()),
    ("decision", pa.string()),           # curation.tasks.Decision
    ("label", pa.string()),
    ("annotator", pa.string()),
    ("decided_at", pa.timestamp("us", tz="UTC")),
    ("previous_label", pa.string()),
    ("previous_u", pa.float64()),
    ("app_version", pa.string()),
    ("reverts", pa.string()),            # decision "undo": the decision_id it cancels (review app)
])

# --- manifests ---------------------------------------------------------------------------------------
MANIFEST_SCHEMA_VERSION = "1.0"
MANIFEST_PARTITION_COLUMNS = ("cohort", "split")   # Hive folders, not columns in the part files


def _task_fields(task: str) -> list[pa.Field]:
    label_type = pa.int8() if isinstance(TASKS[task][0], int) else pa.string()
    return [pa.field(task, label_type), pa.field(f"{task}_u", pa.float64(), nullable=False),
            pa.field(f"{task}_weight", pa.float64(), nullable=False), pa.field(f"{task}_source", pa.string())]


MANIFEST_SCHEMA = pa.schema(
    [pa.field("image_key", pa.string(), nullable=False),
     pa.field("breast_key", pa.string(), nullable=False),
     pa.field("patient_pid", pa.string(), nullable=False),
     pa.field("cache_path", pa.string(), nullable=False),
     pa.field("height", pa.int32(), nullable=False),
     pa.field("width", pa.int32(), nullable=False)]
    + [f for t in LABEL_TASKS for f in _task_fields(t)]
    + [pa.field("vendor", pa.string(), nullable=False),
       pa.field("density_stratum", pa.string(), nullable=False),
       pa.field("view_stratum", pa.string(), nullable=False),
       pa.field("schema_version", pa.string(), nullable=False)],
    metadata={"mammo_mtl.manifest.schema_version": MANIFEST_SCHEMA_VERSION},
)

EXCLUDED_SCHEMA = pa.schema([("image_key", pa.string()), ("batch", pa.string()), ("cohort", pa.string()),
                             ("reason", pa.string()), ("message", pa.string())])

DATASET_CARD_SCHEMA = pa.schema([("cohort", pa.string()), ("split", pa.string()), ("task", pa.string()),
                                 ("class", pa.string()), ("n", pa.int64())])

# --- training ----------------------------------------------------------------------------------------
RUNS_SCHEMA = pa.schema([
    ("run_id", pa.string()),
    ("role", pa.string()),               # mtl | baseline | ensemble | mc_dropout | finetuned
    ("asset", pa.string()),
    ("name", pa.string()),
    ("created_at", pa.string()),         # ISO-8601 UTC
    ("dagster_run_id", pa.string()),
    ("config_hash", pa.string()),
    ("manifest_hash", pa.string()),
    ("model_path", pa.string()),         # "; "-joined for an ensemble
    ("train_keys", pa.string()),         # JSON
    ("seed", pa.int64()),
    ("tasks", pa.string()),              # comma-joined
    ("height", pa.int64()),
    ("width", pa.int64()),
    ("epochs", pa.int64()),
    ("batch_size", pa.int64()),
    ("learning_rate", pa.float64()),
    ("label_plan", pa.string()),         # JSON
    ("spec", pa.string()),               # JSON
    ("budget", pa.string()),             # JSON
    ("metrics", pa.string()),            # JSON
    ("hmi_test_breastbin_auc", pa.float64()),
    ("inb_breastbin_auc", pa.float64()),
    ("train_seconds", pa.float64()),
])

# --- demo generator truth (tests and benchmarks only; never read by the pipeline) --------------------
_BOX = pa.list_(pa.list_(pa.int32()))

TRUTH_SCHEMA = pa.schema([
    ("level", pa.string()),
    ("patient_id", pa.string()),
    ("accession_number", pa.string()),
    ("laterality", pa.string()),
    # image rows
    ("file", pa.string()),
    ("sop_instance_uid", pa.string()),
    ("study_instance_uid", pa.string()),
    ("view", pa.string()),
    ("malignant", pa.int8()),
    ("acr", pa.int8()),
    ("density", pa.string()),
    ("lesion_boxes", _BOX),
    ("lesion_kinds", pa.list_(pa.string())),
    ("text_boxes", _BOX),
    ("planted_defect", pa.string()),
    ("manufacturer", pa.string()),
    ("presentation_intent", pa.string()),
    ("photometric_interpretation", pa.string()),
    ("bits_stored", pa.int8()),
    ("transfer_syntax", pa.string()),
    ("rows", pa.int32()),
    ("cols", pa.int32()),
    ("chest_wall_side", pa.string()),
    ("tag_quirks", pa.list_(pa.string())),
    # breast rows
    ("report_present", pa.bool_()),
    ("report_acr", pa.int8()),
    ("report_density", pa.string()),
    ("report_malignant", pa.int8()),
    ("pathology_malignant", pa.int8()),
    ("report_acr_missing", pa.bool_()),
    ("report_density_missing", pa.bool_()),
    ("report_density_range", pa.bool_()),
    ("report_revised_by_addendum", pa.bool_()),
    ("report_hedged", pa.bool_()),
    ("report_style", pa.string()),
    ("reader_level", pa.string()),
    ("n_findings", pa.int8()),
    ("second_reader_acr", pa.int8()),
    ("second_reader_level", pa.string()),
    ("readers_disagree", pa.bool_()),
])

# table name -> schema (the names are the files' stems); the architecture tests and docs iterate it
TABLES: dict[str, pa.Schema] = {
    "catalog": CATALOG_SCHEMA,
    "quarantine": QUARANTINE_SCHEMA,
    "file_keys": FILE_KEYS_SCHEMA,
    "cache_index": CACHE_INDEX_SCHEMA,
    "cache_quarantine": CACHE_QUARANTINE_SCHEMA,
    "report_mentions": REPORT_MENTIONS_SCHEMA,
    "breast_labels": BREAST_LABELS_SCHEMA,
    "image_labels": IMAGE_LABELS_SCHEMA,
    "report_problems": REPORT_PROBLEMS_SCHEMA,
    "review_queue": REVIEW_QUEUE_SCHEMA,
    "adjudications": ADJUDICATIONS_SCHEMA,
    "manifest": MANIFEST_SCHEMA,
    "excluded": EXCLUDED_SCHEMA,
    "dataset_card": DATASET_CARD_SCHEMA,
    "runs": RUNS_SCHEMA,
    "truth": TRUTH_SCHEMA,
}
