"""Real report wording: glued punctuation, any case, and "density" as a finding.

Real reports write "parenchyma(ACR B).", "parenchyma.(ACR C)", "BIRADS:3", "BI-RADS-4a", are often
lower-case throughout, and call findings "densities" ("focal asymmetric density", "high density
mass") — which is not breast composition, and must not hide the assessment in the same sentence.
"""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from label_mining.api import mine_report
from label_mining.report_parser import ReportParser
from label_mining.uncertainty_policy import load_policy

POLICY = load_policy()
PARSER = ReportParser(POLICY.parser)


def mined(text: str) -> dict[tuple[str, str], tuple[str | None, float]]:
    labels, _ = mine_report(text, parser=PARSER, policy=POLICY)
    return {key: (rec.label, rec.u) for key, rec in labels.items()}


def label(text: str, side: str, task: str) -> str | None:
    return mined(text)[(side, task)][0]


@pytest.mark.parametrize("text, density, acr", [
    ("Breast parenchyma(ACR B). No suspicious findings. BI-RADS 2.", "B", "2"),
    ("Breast parenchyma.(ACR C) Impression: BIRADS:3", "C", "3"),
    ("the breasts are heterogeneously dense(acr c).birads:2", "C", "2"),
    ("Impression: BI-RADS-4a.", None, "4"),
    ("impression: bi-rads 4a. density: acr c.", "C", "4"),
    ("BIRADS 3,4b", None, "4"),
])
def test_glued_punctuation_and_lower_case_are_read(text, density, acr):
    assert label(text, "L", "density") == density
    assert label(text, "L", "acr") == acr


@pytest.mark.parametrize("text, side, acr", [
    ("Focal asymmetric density in the left breast, BI-RADS 3.", "L", "3"),
    ("High density mass right breast, BI-RADS 4.", "R", "4"),
    ("Increased density (ACR 4) left.", "L", "4"),
    ("Asymmetric density: category 3.", "L", "3"),
    ("There is a high density mass in the left breast (BI-RADS 5).", "L", "5"),
    ("High density mass, type 4 lesion, BI-RADS 4.", "L", "4"),
    ("increased density left breast, bi-rads 4", "L", "4"),
    ("A 12 mm density in the left breast. BI-RADS 0.", "L", None),
])
def test_a_finding_called_density_gives_no_composition_label_and_keeps_its_assessment(text, side, acr):
    for variant in (text, text.lower(), text.upper()):
        assert label(variant, "L", "density") is None and label(variant, "R", "density") is None, variant
        assert label(variant, side, "acr") == acr, variant


def test_composition_stated_beside_a_finding_density_is_still_read():
    text = "Breast density: B. Focal asymmetric density right breast, BI-RADS 4."
    assert label(text, "L", "density") == label(text, "R", "density") == "B"
    assert label(text, "R", "acr") == "4" and label(text, "L", "acr") is None


SENTENCES = [
    "Breast parenchyma (ACR B).", "Breast composition: heterogeneously dense (ACR C).", "Density: B/C.",
    "The breasts are almost entirely fatty.", "Scattered fibroglandular densities (ACR B).",
    "Focal asymmetric density in the left breast, BI-RADS 3.", "High density mass in the right breast, BI-RADS 4.",
    "Increased density left upper outer quadrant: BI-RADS 0.", "Right: BI-RADS 2, left: BI-RADS 4a.",
    "Impression: BI-RADS: 3.", "No suspicious mass.", "BI-RADS 1 right, BI-RADS 5 left.",
    "Known biopsy-proven malignancy left breast (BI-RADS 6).", "Findings are probably benign, BI-RADS 3.",
    "Stable benign calcifications, BI-RADS 2.", "Comparison: 2019 (no change).", "Density B; BI-RADS 2.",
]
_AROUND = re.compile(r" ?([,.:;()]) ?")


def respace(text: str, seed: int) -> str:
    """Add or remove spaces around punctuation at random (never inside a word or a number)."""
    rng = random.Random(seed)

    def one(m: re.Match) -> str:
        p = m.group(1)
        before = rng.choice(["", " "]) if p not in "(" else rng.choice(["", " "])
        after = rng.choice(["", " "])
        if p == "." and m.end() < len(text) and text[m.end()].isdigit():
            after = m.group(0)[len(m.group(0).rstrip()):] or ""          # "2. 3" must not become "2.3"
        if p in ",.:;)" and m.start() > 0 and text[m.start() - 1].isdigit() and m.end() < len(text) \
                and text[m.end()].isdigit():
            return m.group(0)
        return before + p + after

    return _AROUND.sub(one, text).strip()


SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REPORTS = st.lists(st.sampled_from(SENTENCES), min_size=1, max_size=6).map(" ".join)


@SETTINGS
@given(REPORTS, st.integers(0, 2**32))
def test_spaces_around_punctuation_never_change_a_label(text, seed):
    assert mined(respace(text, seed)) == mined(text), respace(text, seed)


@SETTINGS
@given(REPORTS, st.sampled_from([str.lower, str.upper, str.title, str.swapcase]))
def test_letter_case_never_changes_a_label(text, case):
    assert mined(case(text)) == mined(text), case(text)


@SETTINGS
@given(st.text(alphabet="abcdirstACRB(),.:; 0123456789-", max_size=120))
def test_spacing_only_adds_spaces_and_keyword_offsets_follow_it(text):
    from label_mining.prescan import Prescan
    from label_mining.spacing import original_offset, space_punctuation

    spaced, inserted = space_punctuation(text)
    assert spaced.replace(" ", "") == text.replace(" ", "") and len(spaced) == len(text) + len(inserted)
    assert all(spaced[i] == " " for i in inserted)
    shifted, direct = Prescan(text).shift(inserted), Prescan(spaced)
    assert (shifted.strong, shifted.descriptive) == (direct.strong, direct.descriptive)
    kept = [i for i in range(len(spaced)) if i not in set(inserted)]
    assert [original_offset(i, inserted) for i in kept] == list(range(len(text)))
