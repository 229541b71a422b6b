"""The cheap filter that makes the parser fast: only sentences that can carry a label reach spaCy.

A 300-character screening report has 4–8 sentences; usually two state the assessment and the
density. Before any tokenisation, the lower-cased report is searched for a short list of keyword
stems with ``str.find`` (a C substring search — several times faster here than one alternation
regex), and a sentence goes to spaCy only if a hit falls inside it. Stems are deliberately broad —
a false positive costs one tokenisation, a false negative loses a label — and every phrase rule
in :mod:`label_mining.entity_rules` contains one of them (a test checks that). Descriptive
category words ("benign", "suspicious", "negative") only count in the sections where a final
assessment is written, so the findings' "no suspicious mass" is not tokenised for nothing.
"""

from __future__ import annotations

import bisect
import re

# explicit anchors and entity words: any section
STRONG_STEMS = ("birad", "bi-rad", "bi rad", "bi - rad", "acr", "categ", "cat.", "cat ", "cat:", "cat-", "class", "densit", "dense", "fat",
                "fibro", "compos", "type", "pattern", "parenchym", "tissue", "malig", "carcin", "cancer", "proven",
                "papillom", "lipoma", "hamartom", "dcis", "idc", "ilc", "suggestive", "assessment")
# descriptive final-assessment words: only where a final assessment is written
DESCRIPTIVE_STEMS = ("negative", "benign", "suspicious", "incomplete", "additional imaging", "normal")
ASSESSMENT_SECTIONS = frozenset({"impression", "addendum", "body"})



def _hits(lowered: str, stems: tuple[str, ...]) -> list[int]:
    found = []
    find = lowered.find
    for stem in stems:
        i = find(stem)
        while i != -1:
            found.append(i)
            i = find(stem, i + 1)
    found.sort()
    return found


class Prescan:
    """Keyword hits of one report; ``can_carry_label(start, end, section)`` asks about one sentence."""

    __slots__ = ("strong", "descriptive")

    def __init__(self, text: str):
        lowered = text.lower()
        self.strong = _hits(lowered, STRONG_STEMS)
        self.descriptive = _hits(lowered, DESCRIPTIVE_STEMS)

    def shift(self, inserted: list[int]) -> "Prescan":
        """The same hits in a text with spaces inserted at ``inserted`` (offsets in the new text,
        :func:`label_mining.spacing.space_punctuation`) — no second scan."""
        cuts = [p - k for k, p in enumerate(inserted)]    # where each space went, in original offsets
        self.strong = [h + bisect.bisect_right(cuts, h) for h in self.strong]
        self.descriptive = [h + bisect.bisect_right(cuts, h) for h in self.descriptive]
        return self

    @staticmethod
    def _any_in(hits: list[int], start: int, end: int) -> bool:
        i = bisect.bisect_left(hits, start)
        return i < len(hits) and hits[i] < end

    def any_in(self, start: int, end: int) -> bool:
        return self._any_in(self.strong, start, end) or self._any_in(self.descriptive, start, end)

    def can_carry_label(self, start: int, end: int, section: str) -> bool:
        if section == "composition" or self._any_in(self.strong, start, end):
            # under a composition heading the topic is density even when no density word repeats ("R: C / L: B")
            return True
        return section in ASSESSMENT_SECTIONS and self._any_in(self.descriptive, start, end)


def can_carry_label(sentence: str, section: str) -> bool:
    """One-sentence convenience form of :class:`Prescan`."""
    return Prescan(sentence).can_carry_label(0, len(sentence), section)


# a side named anywhere in a sentence (for carrying a side to the next, side-less sentence)
SIDE = re.compile(r"\b(right|left|bilateral(?:ly)?|both breasts|rt|lt)\b|\b([RL])\b", re.IGNORECASE)


def sides_named(sentence: str) -> frozenset[str]:
    """{"R"}, {"L"}, {"R", "L"} (bilateral / both) or empty — a regex glance, used only for carrying."""
    found: set[str] = set()
    for m in SIDE.finditer(sentence):
        if m.group(2):
            if m.group(2) == "R":
                found.add("R")
            elif m.group(2) == "L":
                found.add("L")
            continue
        word = m.group(1).lower()
        if word in ("right", "rt"):
            found.add("R")
        elif word in ("left", "lt"):
            found.add("L")
        else:
            found.update(("R", "L"))
    return frozenset(found)
