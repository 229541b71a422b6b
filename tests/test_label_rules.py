"""Report sentences -> per-breast labels: one test per rule family, each named for what it proves."""

from __future__ import annotations

import pytest

from label_mining.api import mine_report
from label_mining.context_rules import load_context_rules
from label_mining.entity_rules import ENTITY_RULES, LATERALITY
from label_mining.prescan import Prescan
from label_mining.report_parser import ReportParser
from label_mining.sectioniser import canonical_heading, split_sections, split_sentences
from label_mining.tokenizer import blank_mammography_nlp
from label_mining.uncertainty_policy import load_policy

POLICY = load_policy()
TERMS = POLICY.terms


def labels(text, reader_level="senior"):
    out, parsed = mine_report(text, reader_level=reader_level)
    return {(side, task): rec for (side, task), rec in out.items()}, parsed


def value(text, side, task, reader_level="senior"):
    return labels(text, reader_level)[0][(side, task)].label


# --- tokenizer and sections ------------------------------------------------------------------
def test_tokenizer_splits_categories_glued_to_their_anchor():
    nlp = blank_mammography_nlp()
    assert [t.text for t in nlp("BI-RADS 4A, BIRADS-4 and ACR3. BIRADS:4 ACRb")] == \
        ["BI", "-", "RADS", "4A", ",", "BIRADS", "-", "4", "and", "ACR", "3", ".", "BIRADS", ":", "4", "ACR", "b"]
    assert [t.text for t in nlp("acre 12-15 mm")] == ["acre", "12", "-", "15", "mm"]
    assert [t.text for t in nlp("density B-C, between b and c.")] == \
        ["density", "B", "-", "C", ",", "between", "b", "and", "c", "."]


def test_misspelled_headings_still_open_their_section():
    assert canonical_heading("Impresion") == ("impression", None)
    assert canonical_heading("Recomendation") == ("recommendation", None)
    assert canonical_heading("Brest density") == ("composition", None)
    assert canonical_heading("Left breast") == (None, "L")
    assert canonical_heading("Patient") == (None, None)


def test_addendum_heading_with_a_date_opens_the_addendum():
    text = "Impression: BI-RADS 3.\n\nADDENDUM 2015-10-15: left breast revised to BI-RADS 2."
    names = [s.name for s in split_sections(text)]
    assert names == ["impression", "addendum"]


def test_sentences_split_before_a_lower_case_anchor_but_not_after_cat_abbreviation():
    text = "Scattered fibroglandular density. bi-rads: 1 right. Cat. 4 left."
    assert [text[a:b] for a, b in split_sentences(text, 0, len(text))] == \
        ["Scattered fibroglandular density.", "bi-rads: 1 right.", "Cat. 4 left."]


# --- the mandatory sentences ----------------------------------------------------------
def test_negated_finding_then_one_category_per_breast():
    out, parsed = labels("No suspicious mass. BI-RADS 1 right, BI-RADS 4 left.")
    assert out[("R", "acr")].label == "1" and out[("L", "acr")].label == "4"
    suspicious = next(m for m in parsed.mentions if m.text == "suspicious")
    assert "negated" in suspicious.modifiers


def test_probably_benign_is_birads_3_not_a_hedge():
    out, parsed = labels("Impression: probably benign finding, short interval follow-up.")
    assert out[("L", "acr")].label == "3" and out[("R", "acr")].label == "3"
    mention = next(m for m in parsed.mentions if m.text == "probably benign")
    assert "uncertain" not in mention.modifiers
    assert out[("L", "acr")].u == pytest.approx(TERMS.descriptive_only)  # only "no explicit number"


def test_cannot_exclude_malignancy_is_a_hedge_and_invents_no_label():
    out, parsed = labels("Impression: cannot exclude malignancy.")
    malignancy = next(m for m in parsed.mentions if m.text == "malignancy")
    assert malignancy.modifiers == frozenset({"uncertain"})
    assert all(rec.label is None for rec in out.values())


def test_density_b_slash_c_is_a_range_with_uncertainty():
    rec = labels("Breast density: B/C.")[0][("L", "density")]
    assert rec.label == "C" and rec.detail == "B-C"          # policy: the denser class
    assert rec.u == pytest.approx(TERMS.range)


def test_previous_biopsy_of_fibroadenoma_is_history_not_a_label():
    out, parsed = labels("History: previous biopsy showed fibroadenoma.")
    assert [m.modifiers for m in parsed.mentions] == [frozenset({"historical"})]
    assert all(rec.label is None for rec in out.values())


def test_addendum_revision_overrides_the_original_category():
    rec = labels("Impression: BI-RADS 2.\nAddendum: revised to BI-RADS 4A.")[0][("R", "acr")]
    assert rec.label == "4" and rec.detail == "4A"
    assert rec.u == pytest.approx(TERMS.addendum_revision)


def test_acr_letter_in_parentheses_is_density():
    assert value("Scattered areas of fibroglandular density (ACR B).", "L", "density") == "B"


def test_birads_list_takes_the_highest_and_keeps_the_subcategory():
    rec = labels("Impression: BIRADS: 3, 4b")[0][("R", "acr")]
    assert rec.label == "4" and rec.detail == "4B" and not rec.conflict


# --- aggregation rules ------------------------------------------------------------------------
def test_highest_category_wins_not_the_first_seen():
    assert value("Findings: calcifications, BI-RADS 2. Mass, BI-RADS 5. Impression: BI-RADS 3.", "L", "acr") == "5"


def test_no_statement_stays_missing_with_a_reason():
    rec = labels("Bilateral mammography, CC and MLO views. Comparison: none.")[0][("R", "acr")]
    assert rec.label is None and rec.weight == 0.0 and rec.missing_reason == "no_label_statements"


def test_a_finding_in_one_breast_does_not_leak_to_the_other():
    out, _ = labels("Impression: Suspicious mass left breast. BI-RADS 4.")
    assert out[("L", "acr")].label == "4"
    assert out[("R", "acr")].label is None


def test_bilateral_statement_applies_to_both_breasts():
    out, _ = labels("Assessment: BIRADS-2, both breasts.")
    assert out[("L", "acr")].label == out[("R", "acr")].label == "2"


def test_per_breast_categories_separated_by_a_slash():
    out, _ = labels("Assessment: L: BI-RADS 6 (known biopsy-proven malignancy) / R: BIRADS-2.")
    assert (out[("L", "acr")].label, out[("R", "acr")].label) == ("6", "2")


def test_one_density_for_both_breasts_unless_stated_per_breast():
    out, _ = labels("Breast composition: heterogeneously dense.")
    assert out[("L", "density")].label == out[("R", "density")].label == "C"
    out, _ = labels("Breast composition: right a, left B.")
    assert (out[("R", "density")].label, out[("L", "density")].label) == ("A", "B")


def test_inline_side_label_does_not_make_density_one_sided():
    out, _ = labels("R: Unremarkable. Left: 12 mm mass, likely benign. Density C. BI-RADS 1 right, BI-RADS 2 left.")
    assert out[("R", "density")].label == out[("L", "density")].label == "C"


def test_acr_number_under_composition_is_a_density_grade():
    out, _ = labels("Breast composition: R: ACR 2 / L: ACR 3.\nImpression: BI-RADS 1.")
    assert (out[("R", "density")].label, out[("L", "density")].label) == ("B", "C")
    assert out[("R", "acr")].label == "1"


def test_roman_acr_grade_is_density_and_arabic_acr_is_the_european_assessment():
    out, _ = labels("Density: ACR II. Conclusion: ACR 4 right, ACR 2 left.")
    assert out[("L", "density")].label == "B"
    assert (out[("R", "acr")].label, out[("L", "acr")].label) == ("4", "2")


def test_site_mapping_can_make_acr_numbers_density():
    policy = load_policy().model_copy(update={"parser": POLICY.parser.model_copy(update={"acr_number_means": "density"})})
    out, _ = mine_report("Density ACR 3.", policy=policy)
    assert out[("L", "density")].label == "C" and out[("L", "acr")].label is None


def test_birads_0_is_incomplete_so_the_label_is_missing():
    rec = labels("Impression: BI-RADS 0, needs additional imaging evaluation.")[0][("L", "acr")]
    assert rec.label is None and rec.missing_reason == "assessment_incomplete_birads_0"


def test_self_contradiction_is_flagged_with_high_u():
    rec = labels("Impression: BI-RADS 1, negative. BI-RADS 5, highly suggestive of malignancy.")[0][("L", "acr")]
    assert rec.label == "5" and rec.conflict
    assert rec.u >= TERMS.conflict


def test_descriptive_words_count_only_where_an_assessment_is_written():
    assert value("Findings: benign-appearing calcifications.", "L", "acr") is None
    rec = labels("Impression: Benign findings.")[0][("L", "acr")]
    assert rec.label == "2" and rec.u == pytest.approx(TERMS.descriptive_only)


def test_hedged_category_gets_the_hedge_term():
    rec = labels("Impression: possibly BI-RADS 4.")[0][("L", "acr")]
    assert rec.label == "4" and rec.u == pytest.approx(TERMS.hedge)


def test_junior_reader_adds_uncertainty():
    assert labels("Impression: BI-RADS 2.", "junior")[0][("L", "acr")].u == pytest.approx(TERMS.reader_level["junior"])
    assert labels("Impression: BI-RADS 2.", "")[0][("L", "acr")].u == pytest.approx(TERMS.reader_level["unknown"])


def test_hypothetical_and_comparison_statements_give_no_label():
    assert value("Recommendation: biopsy if BI-RADS 4 is confirmed.", "L", "acr") is None
    assert value("Comparison: prior study 2021 was BI-RADS 3.", "L", "acr") is None


# --- rule files -------------------------------------------------------------------------------
def test_prescan_keywords_cover_every_entity_phrase():
    for rule in ENTITY_RULES:
        if rule.type == LATERALITY or rule.rule_id == "density.side_letter":
            continue
        for phrase in rule.phrases:
            text = phrase + " 4" if rule.reader else phrase   # an anchor is always followed by its value
            assert Prescan(text).can_carry_label(0, len(text), "impression"), (rule.rule_id, phrase)


def test_context_rules_file_is_extended_without_code(tmp_path):
    rules = (tmp_path / "rules.yaml")
    base = load_context_rules()
    extra = {"literal": "sans", "category": "NEGATED_EXISTENCE", "direction": "FORWARD"}
    import yaml
    rules.write_text(yaml.safe_dump({"version": 2, "section_modifiers": base.section_modifiers,
                                     "rules": [r.model_dump(exclude_none=True) for r in base.rules] + [extra]}))
    parser = ReportParser(POLICY.parser, str(rules))
    mention = next(m for m in parser.parse("Impression: sans malignancy.").mentions)
    assert mention.modifiers == frozenset({"negated"})


def test_a_bad_context_rule_fails_fast_naming_the_field(tmp_path):
    rules = tmp_path / "bad.yaml"
    rules.write_text("version: 1\nrules:\n  - {literal: no, category: NEGATED, direction: FORWARD}\n")
    with pytest.raises(ValueError, match="category"):
        load_context_rules(rules)
