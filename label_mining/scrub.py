"""Evidence text leaves the pipeline; identifiers written inside a report must not.

Report sentences that carry a label rarely name a person, but they can quote an accession or
record number or a date ("compared with exam 20231104, acc 88812345"). In pseudonymised outputs
long digit runs and dates are masked; category numbers, sizes and clock positions survive.
"""

from __future__ import annotations

import re

_DATE = re.compile(r"\b\d{1,4}[./-]\d{1,2}[./-]\d{1,4}\b")
_LONG_NUMBER = re.compile(r"\d{5,}")
_ID_LIKE = re.compile(r"\b(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]{8,}\b")


def scrub(text: str) -> str:
    text = _DATE.sub("<date>", text)
    text = _LONG_NUMBER.sub("<number>", text)
    return _ID_LIKE.sub("<id>", text)
