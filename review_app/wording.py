"""The words an annotator reads for the tables' codes: task titles, class names, queue reasons,
and the keys that decide each class."""

from __future__ import annotations

from curation.tasks import TASKS
from review_app.queue import REASON_TIER

CLASS_NAMES: dict[str, dict[str, str]] = {
    "breastbin": {"0": "benign / normal", "1": "malignant"},
    "acr": {str(c): f"BI-RADS {c}" for c in TASKS["acr"]},
    "density": {"A": "almost entirely fatty", "B": "scattered fibroglandular",
                "C": "heterogeneously dense", "D": "extremely dense"},
    "view": {"CC": "cranio-caudal", "MLO": "medio-lateral oblique (or ML)"},
}
TASK_TITLES = {"breastbin": "Malignancy", "acr": "ACR / BI-RADS category", "density": "Breast density",
               "view": "View position"}
REASON_TEXT = {
    "report_vs_pathology": "pathology disagrees with the report",
    "unattached_pathology": "pathology could not be attached to an exam",
    "two_readers": "two readers disagree",
    "report_vs_dicom_tag": "report disagrees with a DICOM tag",
    "dicom_tag_conflict": "DICOM tags disagree",
    "orientation_disagreement": "image orientation disagrees with the laterality tag",
    "label_conflict": "conflicting label sources",
    "model_disagreement": "the model strongly disagrees",
    "high_uncertainty": "uncertain label",
}
if set(REASON_TEXT) != set(REASON_TIER):  # a new queue reason must get words an annotator reads
    raise RuntimeError(f"REASON_TEXT and queue.REASON_TIER differ: {set(REASON_TEXT) ^ set(REASON_TIER)}")


def class_keys(task: str) -> list[tuple[str, str, str]]:
    """(key, class value, name) per class: the value itself when it is one digit (breastbin
    0/1, ACR 1–6, matching how readers say them), else its 1-based position."""
    classes = [str(c) for c in TASKS[task]]
    single_digits = all(len(c) == 1 and c.isdigit() for c in classes)
    return [(c if single_digits else str(i + 1), c, CLASS_NAMES[task].get(c, c)) for i, c in enumerate(classes)]


def target_title(target_level: str, breast_key: str | None) -> str:
    """'Left breast' / 'Right breast' / 'Image' — never the pseudonymised key itself."""
    if target_level == "breast" and isinstance(breast_key, str) and breast_key[-1:] in ("L", "R"):
        return "Left breast" if breast_key.endswith("L") else "Right breast"
    return "Image" if target_level == "image" else "Breast"
