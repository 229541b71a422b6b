"""The cheap filter that makes the parser fast: only sentences that can carry a label reach spaCy.

A 300-character screening report has 4–8 sentences; usually two of them state the assessment
and the density. One case-insensitive regex per sentence (Python's C regex engine, no tokens)
decides whether spaCy has to look at it. The anchors are deliberately broad — a false positive
costs a tokenisation, a false negative loses a label — and every entity rule in
:mod:`label_mining.entity_rules` needs at least one of them in its sentence (a test checks that).
Descriptive category words ("benign", "suspicious", "negative") only count in the sections where a
final assessment is written, so the findings' "no suspicious mass" is not tokenised for nothing.
"""

from __future__ import annotations

import re

# explicit anchors: any section
STRONG = re.compile(
    r"bi\s?-?\s?rads?|\bacr|categor|\bcat\b|\bclass|densit|dense\b|fatty|fibro\s?-?\s?glandular|composition"
    r"|\btype\s*[1-4a-d]\b|malignan|carcinoma|cancer|proven|fibroadenoma|papilloma|fibrocystic|lipoma|hamartoma"
    r"|\bdcis\b|\bidc\b|\bilc\b|suggestive",
    re.IGNORECASE)
# descriptive final-assessment words: only where a final assessment is written
DESCRIPTIVE = re.compile(r"negative|benign|suspicious|incomplete|additional imaging|normal (?:mammo|study|exam)",
                         re.IGNORECASE)
ASSESSMENT_SECTIONS = frozenset({"impression", "addendum", "body"})

# a side named anywhere in a sentence (for carrying a side to the next, side-less sentence)
SIDE = re.compile(r"\b(right|left|bilateral(?:ly)?|both breasts|rt|lt)\b|\b([RL])\b", re.IGNORECASE)


def can_carry_label(sentence: str, section: str) -> bool:
    if STRONG.search(sentence):
        return True
    return section in ASSESSMENT_SECTIONS and DESCRIPTIVE.search(sentence) is not None


def sides_named(sentence: str) -> frozenset[str]:
    """{"R"}, {"L"}, {"R", "L"} (bilateral / both) or empty — a regex glance, used only for carrying."""
    found: set[str] = set()
    for m in SIDE.finditer(sentence):
        word = (m.group(1) or m.group(2)).lower()
        if word in ("right", "rt", "r"):
            if m.group(2) and m.group(2) != "R":
                continue
            found.add("R")
        elif word in ("left", "lt", "l"):
            if m.group(2) and m.group(2) != "L":
                continue
            found.add("L")
        else:
            found.update(("R", "L"))
    return frozenset(found)
