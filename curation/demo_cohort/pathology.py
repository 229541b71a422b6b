"""``pathology.csv`` rows: biopsy / surgery results and negative follow-ups.

Only a subset of breasts has any (all cancers in hmi, most in inb, half in vtb; every
BI-RADS 4 lesion that proved benign; some benign breasts with a follow-up). A negative
follow-up shorter than 24 months is written too — it confirms nothing, and the truth's
``pathology_malignant`` stays null for it (see :attr:`.plan.BreastPlan.pathology_malignant`).
"""

from __future__ import annotations

from .plan import ExamPlan
from .seeding import day_offset

COLUMNS = ("patient_id", "laterality", "date", "result", "source")


def pathology_rows(exam: ExamPlan) -> list[dict[str, str]]:
    rows = []
    for lat in ("R", "L"):
        for event in exam.breasts[lat].pathology:
            rows.append({"patient_id": exam.patient_id, "laterality": lat,
                         "date": day_offset(exam.study_date, event.days_after_study).isoformat(),
                         "result": event.result, "source": event.source})
    return sorted(rows, key=lambda r: (r["date"], r["laterality"], r["source"]))
