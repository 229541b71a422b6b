"""Bad input never crashes the miner: empty, non-English, HTML, > 1 MB, binary junk, contradictions."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curation.tasks import TASKS
from label_mining.api import mine_report
from label_mining.prescan import DESCRIPTIVE_STEMS, STRONG_STEMS
from label_mining.report_parser import ReportParser
from label_mining.uncertainty_policy import load_policy

POLICY = load_policy()
PARSER = ReportParser(POLICY.parser)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PHRASES = st.sampled_from([
    "BI-RADS 4", "BIRADS: 3, 4b", "density: B/C", "(ACR B)", "no suspicious mass", "probably benign",
    "cannot exclude malignancy", "right", "left", "bilateral", "Impression:", "Addendum:", "ACR 3", "negative",
    "heterogeneously dense", "previous biopsy showed fibroadenoma", "BI-RADS 0", "category 6", ", ", ". ", "\n",
    "<b>", "&nbsp;", "type 2", "R:", "L:", " / "])


def check_valid(labels):
    for (side, task), rec in labels.items():
        assert side in ("L", "R")
        if rec.label is None:
            assert rec.u == 1.0 and rec.weight == 0.0 and rec.missing_reason
        else:
            assert rec.label in {str(v) for v in TASKS[task]}
            assert 0.0 <= rec.u < 1.0 and rec.weight == pytest.approx(1.0 - rec.u)


@SETTINGS
@given(st.text(max_size=400))
def test_any_unicode_text_gives_valid_labels(text):
    labels, parsed = mine_report(text, parser=PARSER, policy=POLICY)
    check_valid(labels)
    for m in parsed.mentions:
        assert 0 <= m.start < m.end <= len(text)


@SETTINGS
@given(st.lists(PHRASES, max_size=25).map("".join))
def test_any_mix_of_report_phrases_gives_valid_labels_and_exact_spans(text):
    labels, parsed = mine_report(text, parser=PARSER, policy=POLICY)
    check_valid(labels)
    for m in parsed.mentions:
        # cleaning is length-preserving, so a span points at the words it names (HTML entities aside)
        if "&" not in text:
            assert " ".join(text[m.start:m.end].split()) == m.text


@SETTINGS
@given(st.binary(min_size=1, max_size=2000))
def test_binary_junk_gives_missing_labels_with_a_reason(blob):
    text = blob.decode("latin-1")
    labels, parsed = mine_report(text, parser=PARSER, policy=POLICY)
    check_valid(labels)
    # junk that happens to spell a label keyword (random bytes almost never do) is not junk
    if any(stem in text.lower() for stem in STRONG_STEMS + DESCRIPTIVE_STEMS):
        return
    assert all(rec.label is None for rec in labels.values())
    assert all(rec.missing_reason for rec in labels.values())
    assert parsed.reason in ("empty_report", "unreadable_text", "no_label_statements")


def test_irrelevant_or_foreign_text_yields_only_missing_labels_with_a_reason():
    for text in ("", "   ", None, float("nan"), "Patientin beschwerdefrei, keine Auffälligkeiten.",
                 "这是一份没有结论的报告。", "\x00\x01\x02" * 100):
        labels, parsed = mine_report(text, parser=PARSER, policy=POLICY)
        assert all(rec.label is None for rec in labels.values())
        assert parsed.reason in ("empty_report", "unreadable_text", "no_label_statements")


def test_html_report_is_read_through_its_tags():
    labels, parsed = mine_report("<html><p>Impression:&nbsp;<b>BI-RADS 4</b> left.</p></html>", parser=PARSER,
                                 policy=POLICY)
    assert labels[("L", "acr")].label == "4" and "html_stripped" in parsed.notes


def test_a_report_over_one_megabyte_is_cut_and_noted_not_crashed():
    text = "Impression: BI-RADS 2. " + "Findings unremarkable. " * 60000
    assert len(text) > 1_000_000
    labels, parsed = mine_report(text, parser=PARSER, policy=POLICY)
    assert labels[("L", "acr")].label == "2" and "truncated" in parsed.notes


def test_self_contradicting_density_gets_conflict_and_high_u():
    labels, _ = mine_report("Breast density: A. The breasts are extremely dense.", parser=PARSER, policy=POLICY)
    rec = labels[("L", "density")]
    assert rec.conflict and rec.u >= POLICY.terms.conflict
