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

_GLUED = re.compile(
    r"(?<=[^\s(\[])(?=[(\[])"                    # word(ACR B)       -> word (ACR B)
    r"|(?<=[)\]])(?=[A-Za-z0-9(\[])"             # (ACR B)Impression -> (ACR B) Impression
    r"|(?<=[A-Za-z\s)]:)(?=[A-Za-z0-9(])"       # BIRADS:3, BIRADS :3, density:B (not 10:30, not http://)
    r"|(?<=[;,])(?=[A-Za-z(])"                   # breast,BI-RADS    -> breast, BI-RADS
    r"|(?<=\d,)(?=\d)(?!\d{3}(?!\d))"            # 3,4b -> 3, 4b (not 1,000)
    r"|(?<=[A-Za-z0-9)\]\s]\.)(?<![^A-Za-z0-9][e-zE-Z]\.)(?<!^[e-zE-Z]\.)(?=[A-Za-z(])(?![A-Za-z]\.)"
    # B.Increased, parenchyma.(ACR C) -> B. Increased; not e.g. / i.e. (a lone letter a-d is a density grade)
)


def space_punctuation(text: str) -> tuple[str, list[int]]:
    """``(spaced text, sorted offsets of the inserted spaces in it)``; ``(text, [])`` when nothing is glued."""
    cuts = [m.start() for m in _GLUED.finditer(text)]
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
