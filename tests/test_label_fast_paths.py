"""The label miner's fast paths find exactly what their plain definitions find.

Speed work on the parser (issue 14.4) replaced a per-character candidate walk for glued punctuation
and a 64-character regex search per heading mark with cheaper equivalents; these properties pin
them to the slow, obvious definitions on arbitrary text, and the tokenizer built in one go to the
one built by setting the rules on ``spacy.blank("en")``. The sentence cache is pinned to reading every
sentence occurrence alone, in a Doc of its own, with no cache.
"""

from __future__ import annotations

import gc
import re

import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st

from label_mining import sectioniser
from label_mining.spacing import space_punctuation
from label_mining.tokenizer import add_mammography_rules, blank_mammography_nlp

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ALNUM = _LETTERS + "0123456789"
_CANDIDATE = re.compile(r"[(\[]|[)\]](?=[A-Za-z0-9(\[])|:(?=[A-Za-z0-9(])|[;,](?=[A-Za-z(])"
                        r"|,(?=\d)(?!\d{3}(?!\d))|\.(?=[A-Za-z(])(?![A-Za-z]\.)")


def reference_spacing(text: str) -> tuple[str, list[int]]:
    """The glue rules written out one candidate at a time (the code before the one-regex form)."""
    cuts: list[int] = []
    for m in _CANDIDATE.finditer(text):
        p, c = m.start(), m.group(0)
        prev = text[p - 1] if p else ""
        if c in "([":
            at = p if prev and not prev.isspace() and prev not in "([" else None
        elif c in ")];,":
            at = p + 1
        elif c == ":":
            at = p + 1 if (prev and prev in _LETTERS) or prev.isspace() or prev == ")" else None
        elif not (prev == "" or prev in _ALNUM or prev in ")]" or prev.isspace()):
            at = None      # "." after anything else; a report's first character counts as a cut
        elif prev and prev in _LETTERS and prev.lower() not in "abcd" and (p < 2 or text[p - 2] not in _ALNUM):
            at = None      # "e.g." / an initial other than a density grade
        else:
            at = p + 1
        if at is not None and (not cuts or cuts[-1] != at):
            cuts.append(at)
    if not cuts:
        return text, []
    spaced = " ".join(text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)]))
    return spaced, [p + k for k, p in enumerate(cuts)]


def reference_headings(text: str):
    """Headings by the one-regex definition: the leftmost heading match in the 64 chars before each mark."""
    out = []
    for mark in sectioniser._HEADING_MARK.finditer(text):
        p = mark.start()
        found = sectioniser._HEADING_TEXT.search(text, max(0, p - 64), p)
        if found:
            out.append((found.start(), found.group("h")))
        elif mark.group(0) == "\n":
            line_start = text.rfind("\n", 0, p) + 1
            caps = sectioniser._CAPS_LINE.fullmatch(text, line_start, p)
            if caps:
                out.append((line_start, caps.group("caps")))
    line_start = text.rfind("\n") + 1
    caps = sectioniser._CAPS_LINE.fullmatch(text, line_start, len(text))
    if caps and line_start > 0:
        out.append((line_start, caps.group("caps")))
    return out


GLUE_TEXT = st.text(alphabet="aAbBdDeExZ019 .,:;()[]\n\t\u00a0-/", max_size=40)
HEADING_TEXT = st.lists(st.sampled_from(
    ["Impression", "IMPRESSION", "Right breast", "LEFT", "addendum 2015-10-15", "(2015/1/2)", "Findings",
     "BI-RADS 4", "x", ": ", ":", "\n", "\n\n", " - ", "-- ", ". ", ".", "; ", "? ", " ", "\t", "-", "12", "a" * 30]),
    max_size=14).map("".join)


@settings(max_examples=400, deadline=None)
@given(GLUE_TEXT)
def test_glue_repair_inserts_exactly_the_spaces_the_rule_by_rule_definition_inserts(text):
    assert space_punctuation(text) == reference_spacing(text)


@settings(max_examples=400, deadline=None)
@given(HEADING_TEXT)
def test_heading_finder_finds_exactly_what_the_one_regex_definition_finds(text):
    assert list(sectioniser._headings(text)) == reference_headings(text)


def test_the_mammography_tokenizer_built_in_one_go_equals_the_rules_set_afterwards():
    once, afterwards = blank_mammography_nlp().tokenizer, add_mammography_rules(spacy.blank("en")).tokenizer
    assert once.rules == afterwards.rules
    for attr in ("prefix_search", "suffix_search", "infix_finditer", "url_match"):
        assert getattr(once, attr).__self__.pattern == getattr(afterwards, attr).__self__.pattern
    text = "BIRADS:3, bi-rads-4a. density b. ACR3 (acr c).Focal e.g. :3 <3 B/C."
    assert [t.text for t in once(text)] == [t.text for t in afterwards(text)]


# --- the sentence cache (label_mining.sentence_reading) -------------------------------------------
from label_mining.chunks import cycle_collector_paused  # noqa: E402
from label_mining.report_parser import ReportParser  # noqa: E402
from label_mining.sentence_reading import SentenceReader  # noqa: E402
from label_mining.uncertainty_policy import load_policy  # noqa: E402


class _EachSentenceAlone(SentenceReader):
    """The plain definition: every occurrence of every sentence read by spaCy in a Doc of its own."""

    def read_many(self, sentences):
        return [self._read_batch([key])[0] for key in sentences]


_POLICY = load_policy()
CACHED = ReportParser(_POLICY.parser, sentence_cache_size=48)    # small, so that entries are evicted too
PLAIN = ReportParser(_POLICY.parser, sentence_cache_size=0)
PLAIN.reader = _EachSentenceAlone(PLAIN.nlp, PLAIN.policy, 0)
REPORT_PARTS = st.sampled_from([
    "Comparison: ", "History: ", "Breast composition: ", "Impression: ", "Findings: ", "Addendum: ", "Right breast: ",
    "LEFT: ", "BI-RADS 4", "BIRADS:3", "bi-rads 2 right, bi-rads 4 left", "density: B/C", "(ACR B)", "ACR 2",
    "probably benign", "no suspicious mass", "cannot exclude malignancy", "previous biopsy showed fibroadenoma",
    "heterogeneously dense", "focal asymmetric density", "category 6", "type 2", "R: C / L: B", "negative",
    "known biopsy-proven malignancy", "left", "right", ". ", ", ", ".", "\n", "  ", " "])
REPORTS = st.lists(st.lists(REPORT_PARTS, max_size=14).map("".join), min_size=1, max_size=8)


@settings(max_examples=150, deadline=None)
@given(REPORTS, st.booleans())
def test_parsing_with_the_sentence_cache_equals_reading_every_sentence_alone(reports, lower):
    if lower:
        reports = [r.lower() for r in reports]
    # twice: the second pass is read from the cache (and what the first put there may be evicted)
    batch = reports + reports[::-1]
    assert CACHED.parse_many(batch) == [PLAIN.parse(r) for r in batch]


def test_the_same_sentence_under_another_section_is_read_again():
    parser = ReportParser(_POLICY.parser)
    # the sentence "BI-RADS 2." is the same text in both; only its section differs
    under_comparison = parser.parse("Comparison:\nBI-RADS 2.").mentions
    in_impression = parser.parse("Impression:\nBI-RADS 2.").mentions
    assert "historical" in under_comparison[0].modifiers and "historical" not in in_impression[0].modifiers


@pytest.mark.parametrize("enabled", [True, False])
def test_the_garbage_collector_is_paused_for_a_chunk_and_left_as_it_was(enabled):
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        with pytest.raises(RuntimeError):
            with cycle_collector_paused():
                assert not gc.isenabled()
                raise RuntimeError("a chunk that fails")
        assert gc.isenabled() == enabled
    finally:
        (gc.enable if was else gc.disable)()
