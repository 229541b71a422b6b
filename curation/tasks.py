"""The four clinical tasks of the paper and their class vocabularies — shared by labels,
manifests, the model and evaluation so a class index means the same thing everywhere.

Manifests and label tables store the human-readable value (``acr=4``, ``density="B"``,
``view="MLO"``); the model maps it to a class index with :func:`class_index`.
"""

from __future__ import annotations

from enum import StrEnum

TASKS: dict[str, tuple] = {
    "breastbin": (0, 1),                # 0 benign/normal, 1 malignant
    "acr": (1, 2, 3, 4, 5, 6),          # BI-RADS / ACR assessment category
    "density": ("A", "B", "C", "D"),    # ACR breast composition
    "view": ("CC", "MLO"),              # ML is folded into MLO (lateral views, paper 2.1)
}
LABEL_TASKS = tuple(TASKS)              # order used by manifests and model heads
ALL_MODEL_TASKS = LABEL_TASKS + ("rec",)  # "rec" = image reconstruction (decoder)
BREAST_TASKS = ("breastbin", "acr", "density")  # labelled once per breast (from the report / pathology)
IMAGE_TASKS = ("view",)                          # labelled once per image (from DICOM tags)


class ConflictKind(StrEnum):
    """Why a label row is flagged ``conflict`` — written by the label miner in ``conflict_kind``,
    read by the review queue (its reason tiers) and the docs. One vocabulary, no substring matching."""

    REPORT_VS_PATHOLOGY = "report_vs_pathology"    # biopsy/surgery/follow-up disagrees with the report
    TWO_READERS = "two_readers"                    # two readers of one study wrote different categories
    REPORT_VS_DICOM_TAG = "report_vs_dicom_tag"    # the report and a DICOM header disagree
    DICOM_TAG_CONFLICT = "dicom_tag_conflict"      # DICOM tags disagree among themselves
    TABLE_VS_REPORT = "table_vs_report"            # structured labels.csv disagrees with the report
    TABLE_VS_PATHOLOGY = "table_vs_pathology"      # labels.csv malignancy disagrees with biopsy/surgery (tissue wins)
    ADDENDUM_REVISION = "addendum_revision"        # an addendum changed the category
    CONFLICTING_STATEMENTS = "conflicting_statements"  # one report states two different values
    UNATTACHED_PATHOLOGY = "unattached_pathology"  # pathology for the patient could not be attached to an exam
    OTHER = "other"


class Decision(StrEnum):
    """What an annotator decided about one label (``adjudications.decision``, the review app's buttons)."""

    CONFIRM = "confirm"    # the label is right: u = 0, weight 1
    CORRECT = "correct"    # the label is wrong; ``label`` holds the right class
    UNKNOWN = "unknown"    # cannot be told from the evidence: label null, weight 0
    SKIP = "skip"          # no decision (kept in the audit trail, never applied)
    UNDO = "undo"          # reverses the annotator's previous decision (appended, never deleting one)


DECISIONS: tuple[str, ...] = tuple(d.value for d in Decision)
LABEL_CHANGING_DECISIONS: tuple[str, ...] = (Decision.CONFIRM, Decision.CORRECT, Decision.UNKNOWN)
TARGET_LEVELS = ("image", "breast")   # adjudications.target_level: image_key or breast_key


def n_classes(task: str) -> int:
    return len(TASKS[task])


def class_index(task: str, value) -> int | None:
    """Map a stored label to its class index; ``None``/NaN -> ``None`` (missing)."""
    if value is None:
        return None
    try:
        if value != value:  # NaN
            return None
    except TypeError:
        pass
    classes = TASKS[task]
    if task in ("breastbin", "acr"):
        value = int(value)
    elif task == "density":
        value = str(value).upper()
    elif task == "view":
        value = "MLO" if str(value).upper() in ("MLO", "ML") else str(value).upper()
    try:
        return classes.index(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid {task} label; expected one of {classes}") from exc
