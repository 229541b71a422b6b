"""Split a report into its sections (and laterality sub-sections) and sentences, by regex.

Radiologists head sections inconsistently ("IMPRESSION:", "Impresion -", "Conclusion", "BI-RADS
assessment:") or not at all. A heading is a short phrase at the start of a line (or right after a
full stop) followed by a colon, or a short all-capitals line; its text is mapped to a canonical
section with an exact table first and a fuzzy match second, so a misspelled heading still opens the
right section and an unknown one ("Patient:") leaves the current section alone. Text before any
heading belongs to ``body``. "Right breast:" / "LEFT:" inside a section opens a laterality scope
that lasts until the next heading.

This runs on every report, so it is plain ``re`` over the whole text: no spaCy here.
"""

from __future__ import annotations

import bisect
import difflib
import re
from functools import lru_cache
from typing import NamedTuple

SECTIONS = ("history", "technique", "comparison", "composition", "findings", "impression",
            "recommendation", "addendum")
BODY = "body"

HEADINGS: dict[str, str] = {}
for _name, _variants in {
    "history": ("history", "clinical history", "indication", "indications", "clinical indication",
                "clinical information", "reason for exam", "reason for examination", "clinical data",
                "anamnesis", "clinical details"),
    "technique": ("technique", "procedure", "examination", "exam", "views", "protocol", "study"),
    "comparison": ("comparison", "comparisons", "prior studies", "prior examinations", "previous studies",
                   "compared with", "comparison studies"),
    "composition": ("breast composition", "composition", "density", "breast density", "parenchyma",
                    "breast tissue", "parenchymal pattern", "tissue density", "parenchymal density"),
    "findings": ("findings", "finding", "description", "observations", "results", "report"),
    "impression": ("impression", "impressions", "assessment", "conclusion", "conclusions", "opinion",
                   "summary", "final assessment", "overall assessment", "diagnosis", "bi-rads assessment",
                   "birads assessment", "result"),
    "recommendation": ("recommendation", "recommendations", "management", "follow-up", "follow up",
                       "plan", "advice", "suggestion"),
    "addendum": ("addendum", "amendment", "addendum report", "revised report", "correction",
                 "amended report", "supplementary report"),
}.items():
    for _v in _variants:
        HEADINGS[_v] = _name

LATERALITY_HEADINGS = {"right": "R", "right breast": "R", "rt": "R", "r": "R", "right side": "R",
                       "left": "L", "left breast": "L", "lt": "L", "l": "L", "left side": "L",
                       "bilateral": "B", "both breasts": "B", "both sides": "B", "bilaterally": "B"}

# a heading ends at a colon, a " - " dash or a line break; the text before that mark is checked by an
# end-anchored pattern on a short window, so the regex runs a few times per report, not at every char
_HEADING_MARK = re.compile(r":|--? |\n")          # each alternative starts with a literal: a C charset scan
_HEADING_START = r"(?:^|(?<=\n)|(?<=[.!?;:]) )"
_HEADING_BODY = (r"[ \t]*(?P<h>[A-Za-z][A-Za-z /&()-]{0,38}?)"
                 r"(?:[ \t]*\(?[0-9]{1,4}[./-][0-9]{1,2}[./-][0-9]{1,4}\)?)?[ \t]*$")   # "ADDENDUM 2015-10-15:"
# the definition: the leftmost match of this in the 64 characters before a mark
_HEADING_TEXT = re.compile(_HEADING_START + _HEADING_BODY)
# how it is run: a heading can only start at the text's start, after a line break or at the space after
# ". " / ": " etc.; those places are found once per report and the body is tried at the few of them in
# the window (same leftmost match: the body at those places is what the definition tries there)
_HEADING_STARTS = re.compile(r"[\n.!?;:](?:(?<=\n)|(?= ))")
_HEADING_AT = re.compile(_HEADING_BODY)
_CAPS_LINE = re.compile(r"[ \t]*(?P<caps>[A-Z][A-Z /&-]{2,38})[ \t]*$")


def _headings(text: str):
    """(start, raw heading text) for every heading candidate, in order."""
    starts = None
    for mark in _HEADING_MARK.finditer(text):
        p = mark.start()
        if starts is None:
            starts = [0]
            starts += [m.end() for m in _HEADING_STARTS.finditer(text)]
        found = None
        for i in range(bisect.bisect_left(starts, p - 64), len(starts)):
            at = starts[i]
            if at >= p:
                break
            found = _HEADING_AT.match(text, at, p)
            if found:
                break
        if found:
            yield found.start(), found.group("h")
            continue
        if mark.group(0) == "\n":
            line_start = text.rfind("\n", 0, p) + 1
            caps = _CAPS_LINE.fullmatch(text, line_start, p)
            if caps:
                yield line_start, caps.group("caps")
    # the last line, if it is an all-caps heading without a line break after it
    line_start = text.rfind("\n") + 1
    caps = _CAPS_LINE.fullmatch(text, line_start, len(text))
    if caps and line_start > 0:
        yield line_start, caps.group("caps")


# candidate sentence ends: a full stop (or ! ?) followed by space, or a line break; each is judged
# in Python (a handful per report) instead of by look-behinds at every character
_BREAK = re.compile(r"[.!?]\s+|\n\s*")
_ABBREVIATIONS = frozenset({"cat", "approx", "ca", "no", "vs", "e.g", "i.e", "fig", "dr", "mr", "mrs", "ms"})


@lru_cache(maxsize=4096)
def canonical_heading(raw: str) -> tuple[str | None, str | None]:
    """``"Impresion"`` -> ("impression", None); ``"Left breast"`` -> (None, "L"); unknown -> (None, None)."""
    text = " ".join(raw.lower().replace("_", " ").split()).strip(" -/&()")
    if not text:
        return None, None
    if text in LATERALITY_HEADINGS:
        return None, LATERALITY_HEADINGS[text]
    if text in HEADINGS:
        return HEADINGS[text], None
    if len(text) >= 5:
        close = difflib.get_close_matches(text, HEADINGS.keys(), n=1, cutoff=0.8)
        if close:
            return HEADINGS[close[0]], None
    return None, None


class Section(NamedTuple):
    name: str               # canonical name or "body"
    start: int              # char offsets into the report
    end: int
    laterality: str | None  # "R" / "L" / "B" when a laterality heading scopes this part
    inline: bool = False    # that heading sat inside a paragraph ("... mass. Left: ...") — a findings label


def split_sections(text: str) -> list[Section]:
    """Contiguous, non-overlapping sections covering the whole text (headings included)."""
    cuts: list[tuple[int, str, str | None, bool]] = []  # (start, section name, laterality, inline)
    current = BODY
    for start, raw in _headings(text):
        if cuts and start <= cuts[-1][0]:
            continue
        name, lat = canonical_heading(raw)
        if name is not None:
            current = name
            cuts.append((start, name, None, False))
        elif lat is not None:
            line_start = start == 0 or text[start - 1] == "\n"
            # "Findings: Right breast: ..." — a side heading right after a section heading is structural
            after_heading = False
            if cuts and cuts[-1][2] is None:
                between = text[cuts[-1][0]:start]
                after_heading = between.rstrip().endswith(":") and len(between.split()) <= 4
            cuts.append((start, current, lat, not (line_start or after_heading)))
    if not cuts or cuts[0][0] > 0:
        cuts.insert(0, (0, BODY, None, False))
    sections = []
    for i, (start, name, lat, inline) in enumerate(cuts):
        end = cuts[i + 1][0] if i + 1 < len(cuts) else len(text)
        if end > start:
            sections.append(Section(name, start, end, lat, inline))
    return sections


def _ends_sentence(text: str, match: re.Match, end: int) -> bool:
    """A full stop ends a sentence before a capital, and before a lower-case word too ("... density.
    bi-rads: 2 right") unless it ends a common abbreviation ("cat. 4", "approx. 5 mm") or an initial
    other than a density grade a-d."""
    if "\n" in match.group(0) or match.group(0)[0] != ".":
        return True
    nxt = text[match.end()] if match.end() < end else ""
    if not nxt or nxt.isupper() or nxt in "([\"'":
        return True
    if not nxt.islower():
        return False
    word_start = match.start()
    while word_start > 0 and (text[word_start - 1].isalnum() or text[word_start - 1] == "."):
        word_start -= 1
    word = text[word_start:match.start()].lower()
    # a lone a-d is a density grade ("density b. increased density right"), not an initial
    # (and a stop after a bracket or a quote, "(ACR B). focal ...", ends the sentence)
    return (len(word) != 1 or not word.isalpha() or word in "abcd") and word not in _ABBREVIATIONS


def split_sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence char spans inside ``text[start:end]`` (blank ones dropped)."""
    spans = []
    pos = start
    for match in _BREAK.finditer(text, start, end):
        if not _ends_sentence(text, match, end):
            continue
        cut = match.start() + (1 if match.group(0)[0] in ".!?" else 0)
        if cut > pos and text[pos:cut].strip():
            spans.append((pos, cut))
        pos = match.end()
    if end > pos and text[pos:end].strip():
        spans.append((pos, end))
    return spans

