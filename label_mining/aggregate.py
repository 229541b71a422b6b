"""Mentions of one report -> one assessment (acr) and one density label per breast.

Rules (BI-RADS 5th edition reporting conventions):

* the overall assessment of a breast is its most worrisome category — the highest, never the first
  seen; 4A/4B/4C count as 4 and keep the sub-category as detail;
* no statement, no label: a breast with no eligible mention stays missing (with a reason), never
  a default category;
* negated, historical and hypothetical mentions never give a label; descriptive words count
  only where a final assessment is written and only when no explicit category is given;
* an addendum overrides the original report for the tasks it speaks about;
* a side-less statement applies to both breasts; a lateralised one to its breast only;
* density is one value for both breasts unless a breast is named.

The uncertainty terms that apply are combined by :func:`uncertainty_policy.combine`.
"""

from __future__ import annotations

from curation.tasks import ConflictKind
from label_mining.entity_rules import ASSESSMENT, DENSITY
from label_mining.label_record import LabelRecord, clip_evidence, missing
from label_mining.prescan import ASSESSMENT_SECTIONS
from label_mining.report_parser import Mention, ParsedReport
from label_mining.uncertainty_policy import UncertaintyPolicy, combine

SIDES = ("L", "R")
DISQUALIFYING = frozenset({"negated", "historical", "hypothetical"})
_DENSITY_ORDER = "ABCD"


def _eligible(m: Mention) -> bool:
    if m.modifiers & DISQUALIFYING:
        return False
    return not m.descriptive or m.section in ASSESSMENT_SECTIONS


def _for_side(mentions: list[Mention], side: str) -> list[Mention]:
    return [m for m in mentions if m.laterality in (side, "B")]


def _addendum_split(ms: list[Mention]) -> tuple[list[Mention], list[Mention]]:
    add = [m for m in ms if m.section == "addendum"]
    if not add:
        return ms, []
    return add, [m for m in ms if m.section != "addendum"]


def _missing_reason(parsed: ParsedReport, all_of_type: list[Mention], side_of_type: list[Mention], what: str) -> str:
    if parsed.reason:
        return parsed.reason   # empty_report, unreadable_text, no_label_statements: the whole report
    if not all_of_type:
        return f"no_{what}_statement"
    if not side_of_type:
        return f"{what}_stated_for_other_breast_only"
    return f"{what}_only_negated_historical_or_hypothetical"


def assessment_label(parsed: ParsedReport, side: str, policy: UncertaintyPolicy, reader_u: float,
                     everything: list[Mention] | None = None) -> LabelRecord:
    if everything is None:
        everything = [m for m in parsed.mentions if m.type == ASSESSMENT]
    on_side = _for_side(everything, side)
    usable = [m for m in on_side if _eligible(m)]
    if not usable:
        return missing("acr", _missing_reason(parsed, everything, on_side, "assessment"))
    usable, original = _addendum_split(usable)
    explicit = [m for m in usable if not m.descriptive]
    use = explicit or usable
    best_value, best_detail, best = -1, None, None
    for m in use:
        for raw, value in zip(m.values, m.label_values):
            v = int(value)
            detail = raw if len(raw) > 1 else None
            if v > best_value or (v == best_value and detail and (best_detail or "") < detail):
                best_value, best_detail, best = v, detail, m
    categories = {int(v) for m in use for v in m.label_values}
    if best_value == 0:
        # BI-RADS 0 = "incomplete, needs additional imaging": no assessment yet, and not a class of
        # the task (paper 2.3) — missing, with the statement kept as evidence
        return missing("acr", "assessment_incomplete_birads_0", best.rule_id, clip_evidence(best.sentence))
    terms = [reader_u]
    conflict = 1 in categories and max(categories) >= 3  # "negative" and a finding >= 3 for one breast
    if conflict:
        terms.append(policy.terms.conflict)
    if best.is_range:
        terms.append(policy.terms.range)
    if "uncertain" in best.modifiers:
        terms.append(policy.terms.hedge)
    if not explicit:
        terms.append(policy.terms.descriptive_only)
    if original:
        before = max(int(v) for m in original for v in m.label_values)
        if before != best_value:
            terms.append(policy.terms.addendum_revision)
    return LabelRecord("acr", str(best_value), combine(*terms), "report", best.rule_id,
                       clip_evidence(best.sentence), conflict, best_detail,
                       conflict_kind=ConflictKind.CONFLICTING_STATEMENTS if conflict else None)


def density_label(parsed: ParsedReport, side: str, policy: UncertaintyPolicy, reader_u: float,
                  everything: list[Mention] | None = None) -> LabelRecord:
    if everything is None:
        everything = [m for m in parsed.mentions if m.type == DENSITY]
    on_side = _for_side(everything, side)
    usable = [m for m in on_side if _eligible(m)]
    if not usable:
        return missing("density", _missing_reason(parsed, everything, on_side, "density"))
    usable, original = _addendum_split(usable)
    singles = [m for m in usable if not m.is_range]
    terms = [reader_u]
    conflict = False
    if singles:
        counts: dict[str, int] = {}
        for m in singles:
            counts[m.values[0]] = counts.get(m.values[0], 0) + 1
        # most stated; a tie goes to the denser class (the one that changes screening)
        value = max(counts, key=lambda v: (counts[v], _DENSITY_ORDER.index(v)))
        if len(counts) > 1:
            conflict = True
            terms.append(policy.terms.conflict)
        chosen = next(m for m in singles if m.values[0] == value)
    else:
        chosen = usable[0]
        pick = max if policy.parser.density_range_pick == "higher" else min
        value = pick(chosen.values, key=_DENSITY_ORDER.index)
        terms.append(policy.terms.range)
    if "uncertain" in chosen.modifiers:
        terms.append(policy.terms.hedge)
    if original and {v for m in original for v in m.values} != {value}:
        terms.append(policy.terms.addendum_revision)
    detail = "-".join(chosen.values) if chosen.is_range else None
    return LabelRecord("density", value, combine(*terms), "report", chosen.rule_id,
                       clip_evidence(chosen.sentence), conflict, detail,
                       conflict_kind=ConflictKind.CONFLICTING_STATEMENTS if conflict else None)


def report_labels(parsed: ParsedReport, policy: UncertaintyPolicy, reader_level: str | None) -> dict[tuple[str, str], LabelRecord]:
    """{(side, task): record} for task in (acr, density) from one report."""
    reader_u = policy.reader_u(reader_level)
    assessments = [m for m in parsed.mentions if m.type == ASSESSMENT]
    densities = [m for m in parsed.mentions if m.type == DENSITY]
    out = {}
    for side in SIDES:
        out[(side, "acr")] = assessment_label(parsed, side, policy, reader_u, assessments)
        out[(side, "density")] = density_label(parsed, side, policy, reader_u, densities)
    return out


def merge_readers(per_report: list[dict[tuple[str, str], LabelRecord]], policy: UncertaintyPolicy
                  ) -> dict[tuple[str, str], LabelRecord]:
    """Several reports of one examination (double reading, a second opinion): agreeing readers keep
    the most certain record; disagreeing ones are a conflict — the most certain reader's label is
    kept (the higher category on a tie) with the readers-disagree term added."""
    if len(per_report) == 1:
        return per_report[0]
    merged = {}
    for key in per_report[0]:
        records = [r[key] for r in per_report]
        present = [r for r in records if r.label is not None]
        if not present:
            merged[key] = records[0]
            continue
        labels = {r.label for r in present}
        best = min(present, key=lambda r: (r.u, -ord(r.label[0])))
        if len(labels) == 1:
            merged[key] = best
        else:
            merged[key] = best.with_(u=combine(best.u, policy.terms.multiple_readers_disagree), conflict=True,
                                     conflict_kind=ConflictKind.TWO_READERS,
                                     rule_id=best.rule_id + "+readers_disagree")
    return merged
