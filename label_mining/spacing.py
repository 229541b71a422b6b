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

# candidates start at the punctuation itself (the regex engine skips ahead to them in C); what must
# come before it is checked in Python for the few candidates of a report
_CANDIDATE = re.compile(r"[(\[]|[)\]](?=[A-Za-z0-9(\[])|:(?=[A-Za-z0-9(])|[;,](?=[A-Za-z(])"
                        r"|,(?=\d)(?!\d{3}(?!\d))|\.(?=[A-Za-z(])(?![A-Za-z]\.)")
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_ALNUM = _LETTERS | frozenset("0123456789")


def _cut(text: str, m: re.Match) -> int | None:
    """Where to insert a space for candidate ``m``, or None."""
    p, c = m.start(), m.group(0)
    prev = text[p - 1] if p else ""
    if c in "([":                                   # word(ACR B) -> word (ACR B)
        return p if prev and not prev.isspace() and prev not in "([" else None
    if c in ")]" or c == ";":                       # (ACR B)Impression, a;b
        return p + 1
    if c == ":":                                    # BIRADS:3, BIRADS :3, density:B — not 10:30, not http://
        return p + 1 if prev in _LETTERS or prev.isspace() or prev == ")" else None
    if c == ",":                                    # breast,BI-RADS; 3,4b (not 1,000)
        return p + 1
    # ".": B.Increased, parenchyma.(ACR C), (ACR B).Focal — not e.g. / i.e. (a lone a-d is a density grade)
    if not (prev in _ALNUM or prev in ")]" or prev.isspace()):
        return None
    if prev in _LETTERS and prev.lower() not in "abcd" and (p < 2 or text[p - 2] not in _ALNUM):
        return None
    return p + 1


def space_punctuation(text: str) -> tuple[str, list[int]]:
    """``(spaced text, sorted offsets of the inserted spaces in it)``; ``(text, [])`` when nothing is glued."""
    cuts: list[int] = []
    for m in _CANDIDATE.finditer(text):
        p = m.start()
        if text[p] == "(" or text[p] == "[":       # the common case, decided inline
            if p and not text[p - 1].isspace() and text[p - 1] not in "([" and (not cuts or cuts[-1] != p):
                cuts.append(p)
            continue
        at = _cut(text, m)
        if at is not None and (not cuts or cuts[-1] != at):
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
