"""Give glued punctuation the space a careful typist would have left, and remember where.

Real reports write "parenchyma(ACR B).", "parenchyma.(ACR C)", "BIRADS:3", "B.Increased density",
"BI-RADS 3,4b" and "right breast,BI-RADS 4". Without a space spaCy keeps such tokens glued
("parenchyma(ACR", ":3" — an emoticon to its English rules) and the sentence splitter runs two
sentences together. :func:`space_punctuation` inserts one space at each such place, so spaced and
unspaced writings of a report are read the same way; the parser maps offsets back to the
original text with :func:`original_offset` (inserted spaces are never part of a span).

Not touched: times ("10:30"), decimals ("1.5 cm"), thousands ("1,000"), URLs ("http://"),
abbreviations of single letters ("e.g.", "i.e."), and every character of the text (only spaces
are added).
"""

from __future__ import annotations

import bisect
import re

# Every match is a place that gets a space: each alternative starts at its punctuation mark (so the
# regex engine skips ahead to them in C) and checks what comes before it with a look-behind — a
# report with nothing glued costs one search and no Python-level work. The cut is before an opening
# bracket and after every other mark.
_GLUED = re.compile(
    r"\((?<=[^\s(\[]\()|\[(?<=[^\s(\[]\[)"            # word(ACR B) -> word (ACR B); not "((" or " ("
    r"|\)(?=[A-Za-z0-9(\[])|\](?=[A-Za-z0-9(\[])"       # (ACR B)Impression
    r"|;(?=[A-Za-z(])"                                # a;b
    r"|:(?<=[A-Za-z\s)]:)(?=[A-Za-z0-9(])"             # BIRADS:3, BIRADS :3, density:B — not 10:30, not http://
    r"|,(?=[A-Za-z(])|,(?=\d)(?!\d{3}(?!\d))"          # breast,BI-RADS; 3,4b — not 1,000
    # B.Increased, parenchyma.(ACR C), (ACR B).Focal, 4.Left — not e.g. / i.e. / a lone initial other
    # than a density grade a-d (whose stop ends a sentence: "density b.Focal"); a report's first character
    r"|\.(?=[A-Za-z(])(?![A-Za-z]\.)(?:(?<=[0-9)\]\sabcdABCD]\.)|(?<=[A-Za-z0-9][A-Za-z]\.)|(?<=^\.))")
# each alternative starts with a literal, so the engine finds candidates by a C charset scan


def space_punctuation(text: str) -> tuple[str, list[int]]:
    """``(spaced text, sorted offsets of the inserted spaces in it)``; ``(text, [])`` when nothing is glued."""
    cuts: list[int] = []
    for m in _GLUED.finditer(text):
        p = m.start()
        at = p if text[p] in "([" else p + 1
        if not cuts or cuts[-1] != at:            # ")(" is one cut, not two
            cuts.append(at)
    if not cuts:
        return text, []
    parts, pos = [], 0
    for p in cuts:
        parts.append(text[pos:p])
        pos = p
    parts.append(text[pos:])
    return " ".join(parts), [p + k for k, p in enumerate(cuts)]


def original_offset(offset: int, inserted: list[int]) -> int:
    """Offset in the spaced text -> offset in the original (a span end maps to the end after its last char)."""
    return offset - bisect.bisect_left(inserted, offset) if inserted else offset
