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

:data:`ACR_TO_MALIGNANCY` is the project's one ACR (BI-RADS) -> malignancy mapping; training-time
experiments import it (:func:`malignancy_from_acr`) instead of writing their own.

Pathology that cannot be attached to the examination — its study date is empty or unreadable —
never silently loses to the assessment: a derived label that contradicts it is withheld
(missing, ``conflict_kind`` ``unattached_pathology``, so a reviewer can decide) instead of
training the model on "benign" for a biopsy-proven cancer.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from curation.tasks import ConflictKind
from label_mining.dates import parse_date  # noqa: F401  (re-exported: older callers)
from label_mining.label_record import LabelRecord, missing
from label_mining.uncertainty_policy import UncertaintyPolicy, combine

RESULTS = ("malignant", "benign", "high_risk")
SOURCES = ("biopsy", "surgery", "follow_up")

# The one ACR (BI-RADS) -> malignancy mapping: 1-2 benign, 4-6 malignant (6 = known biopsy-proven
# malignancy, a confirmed label, not a derived one); 0 (incomplete) and 3 (probably benign) give none.
ACR_TO_MALIGNANCY: dict[int, int] = {1: 0, 2: 0, 4: 1, 5: 1, 6: 1}
# the categories whose malignancy is *derived* (u = derived_u), as opposed to stated (6)
DERIVED_ACR: frozenset[int] = frozenset({1, 2, 4, 5})
_DERIVED = {str(k): str(ACR_TO_MALIGNANCY[k]) for k in sorted(DERIVED_ACR)}


def malignancy_from_acr(acr) -> int | None:
    """0 / 1 for an ACR category per :data:`ACR_TO_MALIGNANCY`; None for 0, 3, missing or NaN."""
    if acr is None or acr != acr:
        return None
    try:
        return ACR_TO_MALIGNANCY.get(int(acr))
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class PathologyRecord:
    laterality: str
    date: dt.date
    result: str   # malignant | benign | high_risk
    source: str   # biopsy | surgery | follow_up
    row: int = 0  # line of pathology.csv (for reporting rows no examination used)


def attaches(rec: PathologyRecord, study_date: dt.date, policy: UncertaintyPolicy) -> bool:
    """Whether ``rec`` can speak for the examination of ``study_date`` (the windows of the rules above)."""
    mp = policy.malignancy
    if rec.source == "follow_up" and rec.result == "benign":
        return rec.date >= add_months(study_date, mp.follow_up_months)
    return study_date <= rec.date <= study_date + dt.timedelta(days=mp.pathology_window_days)


def pathology_class(rec: PathologyRecord, policy: UncertaintyPolicy) -> str | None:
    if rec.result == "malignant":
        return "1"
    if rec.result == "high_risk":
        return policy.malignancy.high_risk_label
    return "0"


def withhold_if_contradicted(label: LabelRecord, unattached: list[PathologyRecord],
                             policy: UncertaintyPolicy) -> LabelRecord:
    """A derived label that pathology on file contradicts, when that pathology cannot be attached
    (no readable study date): missing, flagged for review — never a silent "benign" on a cancer."""
    if label.source != "derived" or not unattached:
        return label
    against = [p for p in unattached if pathology_class(p, policy) not in (None, label.label)]
    if not against:
        return label
    rec = max(against, key=lambda p: (p.result == "malignant", p.date))
    evidence = (f"{rec.source} {rec.date.isoformat()}: {rec.result} on file, exam date unreadable; "
                f"the report alone would give {label.label}")
    return LabelRecord("breastbin", None, 1.0, "none", "malignancy.unattached_pathology", evidence,
                       conflict=True, conflict_kind=ConflictKind.UNATTACHED_PATHOLOGY,
                       missing_reason="pathology_on_file_contradicts_report_but_exam_date_unreadable")


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
    return LabelRecord("breastbin", "0", u, rec.source, rule, evidence, conflict=discordant,
                       conflict_kind=ConflictKind.REPORT_VS_PATHOLOGY if discordant else None)


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
                           "malignancy.derived_from_acr", acr.evidence, acr.conflict,
                           conflict_kind=acr.conflict_kind)
    if acr.label is None:
        return missing("breastbin", f"no_pathology_and_{acr.missing_reason or 'no_assessment'}")
    return missing("breastbin", f"no_pathology_and_acr_{acr.label}_not_derived", "malignancy.derived_from_acr",
                   acr.evidence)


def unattached_pathology(pathology: dict[str, list[PathologyRecord]], attached: set[int], seen: set[str],
                         dated: set[str], policy: UncertaintyPolicy) -> list[tuple[int, str]]:
    """Every pathology.csv row that no examination could use, with why."""
    mp = policy.malignancy
    out = []
    for patient, records in pathology.items():
        for rec in records:
            if rec.row in attached:
                continue
            if patient not in seen:
                why = "no report of this patient in reports.csv"
            elif patient not in dated:
                why = "none of the patient's exams has a readable study_date"
            elif rec.source == "follow_up" and rec.result == "benign":
                why = f"no exam of this patient at least {mp.follow_up_months} months before this benign follow-up"
            else:
                why = f"no exam of this patient in the {mp.pathology_window_days} days before this {rec.source}"
            out.append((rec.row, f"pathology_not_attached: {why}"))
    return sorted(out)
