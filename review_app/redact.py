"""Mask identifiers in report text before it is shown — length-preserving, so mention offsets hold.

Masked: every identifier value reports.csv itself holds for the row (accession, patient id, reader
id, any ``*name*`` column, birth date), and labelled patterns written into the text — MRN / patient
ID / accession numbers, dates of birth, and name fields (``Patient: Family, Given``, ``Name: …``).
Each masked character becomes ``█`` (so a highlight of characters 40–49 still covers the same words).
"""

from __future__ import annotations

import re

MASK = "█"
_LABELLED = [
    re.compile(r"(?i)\b(?:MRN|patient\s*(?:id|no\.?|number)|PID|accession(?:\s*(?:no\.?|number))?|"
               r"acc\.?\s*no\.?)\s*[:#]?\s*([A-Z0-9][A-Z0-9\-/]{2,})"),
    re.compile(r"(?i)\b(?:DOB|d\.o\.b\.?|date\s+of\s+birth|born(?:\s+on)?)\s*[:]?\s*"
               r"(\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\d{1,2}\s+[A-Za-z]{3,9}\s+\d{4})"),
    re.compile(r"(?i)\b(?:patient(?:\s+name)?|name)\s*:\s*([A-Z][\w'\-]+(?:[ ,]+[A-Z][\w'\-]+){0,3})"),
]


def _mask(text: str, start: int, end: int) -> str:
    return text[:start] + MASK * (end - start) + text[end:]


def redact(text: str, known: list[str] = ()) -> str:
    """``text`` with known identifier values and labelled identifier patterns masked (same length)."""
    for value in sorted({v.strip() for v in known if v and len(v.strip()) >= 3}, key=len, reverse=True):
        for match in list(re.finditer(re.escape(value), text, flags=re.IGNORECASE)):
            text = _mask(text, match.start(), match.end())
        for part in re.split(r"[\s,^]+", value):  # DICOM-style "Family^Given" and "Family, Given"
            if len(part) >= 3 and not part.isdigit():
                for match in list(re.finditer(rf"\b{re.escape(part)}\b", text, flags=re.IGNORECASE)):
                    text = _mask(text, match.start(), match.end())
    for pattern in _LABELLED:
        for match in list(pattern.finditer(text)):
            text = _mask(text, match.start(1), match.end(1))
    return text
