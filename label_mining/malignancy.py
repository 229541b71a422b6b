"""The breastbin label (malignant or not) of one breast at one examination.

Order of evidence, strongest first (paper 2.3, "only samples having positive biopsy are classed
as malignant; a negative biopsy or a negative follow-up makes a case benign"):

1. surgery, then biopsy, within ``pathology_window_days`` after the examination: confirmed, u from
   the policy's source table; a benign result under a BI-RADS 5 assessment is a radiology–
   pathology discordance (conflict flag, ``discordance_u``);
2. a report assessment of 6 (known biopsy-proven malignancy): malignant, confirmed;
3. a benign follow-up at least ``follow_up_months`` after the examination: benign;
4. derived from the assessment as in the paper: 1–2 benign, 4–5 malignant, 3 (and 0) missing,
   with u = noisy-OR(``derived_u``, u of the assessment).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from label_mining.label_record import LabelRecord, missing
from label_mining.uncertainty_policy import UncertaintyPolicy, combine

RESULTS = ("malignant", "benign", "high_risk")
SOURCES = ("biopsy", "surgery", "follow_up")
_DERIVED = {"1": "0", "2": "0", "4": "1", "5": "1"}


@dataclass(frozen=True)
class PathologyRecord:
    laterality: str
    date: dt.date
    result: str   # malignant | benign | high_risk
    source: str   # biopsy | surgery | follow_up


def parse_date(value) -> dt.date | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text or text.lower() in ("nan", "nat", "none"):
        return None
    if len(text) == 10 and text[4] == "-":
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            return None
    for fmt in ("%Y-%m-%d", "%Y%m%d", "%d.%m.%Y", "%Y/%m/%d"):
        try:
            return dt.datetime.strptime(text[:10] if "-" in text[:10] else text, fmt).date()
        except ValueError:
            continue
    return None


def add_months(day: dt.date, months: int) -> dt.date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _pathology_label(rec: PathologyRecord, policy: UncertaintyPolicy, acr: LabelRecord) -> LabelRecord:
    base_u = getattr(policy.sources, rec.source)
    rule = f"malignancy.{rec.source}_{rec.result}"
    evidence = f"{rec.source} {rec.date.isoformat()}: {rec.result}"
    if rec.result == "malignant":
        return LabelRecord("breastbin", "1", base_u, rec.source, rule, evidence)
    if rec.result == "high_risk":
        if policy.malignancy.high_risk_label is None:
            return missing("breastbin", "high_risk_lesion_unlabelled", rule, evidence)
        return LabelRecord("breastbin", policy.malignancy.high_risk_label,
                           combine(base_u, policy.malignancy.high_risk_u), rec.source, rule, evidence)
    discordant = acr.label == "5"
    u = combine(base_u, policy.malignancy.discordance_u) if discordant else base_u
    return LabelRecord("breastbin", "0", u, rec.source, rule, evidence, conflict=discordant)


def breastbin_label(acr: LabelRecord, pathology: list[PathologyRecord], study_date: dt.date | None,
                    policy: UncertaintyPolicy) -> LabelRecord:
    mp = policy.malignancy
    if study_date is not None and pathology:
        window_end = study_date + dt.timedelta(days=mp.pathology_window_days)
        tissue = [p for p in pathology if p.source in ("surgery", "biopsy") and study_date <= p.date <= window_end]
        if tissue:
            # surgery sees the whole lesion, a core biopsy a sample of it; the latest word of each wins,
            # and among same-day results a malignant one (cancer found is cancer present)
            rank = {"surgery": 1, "biopsy": 0}
            severity = {"malignant": 2, "high_risk": 1, "benign": 0}
            chosen = max(tissue, key=lambda p: (rank[p.source], p.date, severity[p.result]))
            return _pathology_label(chosen, policy, acr)
    if acr.label == "6":
        return LabelRecord("breastbin", "1", acr.u, "report", "malignancy.birads6_known_cancer", acr.evidence)
    if study_date is not None and pathology:
        window_end = study_date + dt.timedelta(days=mp.pathology_window_days)
        confirm_after = add_months(study_date, mp.follow_up_months)
        follow = [p for p in pathology if p.source == "follow_up"]
        cancer = [p for p in follow if p.result == "malignant" and study_date <= p.date <= window_end]
        if cancer:
            return _pathology_label(max(cancer, key=lambda p: p.date), policy, acr)
        benign = [p for p in follow if p.result == "benign" and p.date >= confirm_after]
        if benign:
            rec = min(benign, key=lambda p: p.date)
            return LabelRecord("breastbin", "0", policy.sources.follow_up, "follow_up",
                               f"malignancy.follow_up_benign_{mp.follow_up_months}m",
                               f"follow_up {rec.date.isoformat()}: benign")
    if acr.label in _DERIVED:
        return LabelRecord("breastbin", _DERIVED[acr.label], combine(mp.derived_u, acr.u), "derived",
                           "malignancy.derived_from_acr", acr.evidence, acr.conflict)
    if acr.label is None:
        return missing("breastbin", f"no_pathology_and_{acr.missing_reason or 'no_assessment'}")
    return missing("breastbin", f"no_pathology_and_acr_{acr.label}_not_derived", "malignancy.derived_from_acr",
                   acr.evidence)
