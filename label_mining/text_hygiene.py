"""Make any cell of ``report_text`` safe to parse, without moving a single character.

Every normalisation here is length-preserving (an HTML tag becomes the same number of spaces,
``&nbsp;`` becomes one space and five padding spaces, a control byte becomes a space), so span
offsets computed on the cleaned text point at the same characters in the original report — a
reviewer can always be shown the exact source span.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

_TAG = re.compile(r"<[^<>]{0,2000}>")
_ENTITY = re.compile(r"&(?:#\d{1,7}|#x[0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
# C0/C1 controls except tab/newline/carriage return, and the Unicode replacement char of bad decodes
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")
_ASCII_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# reasons a whole report yields no labels; kept verbatim in the outputs
EMPTY = "empty_report"
UNREADABLE = "unreadable_text"
TRUNCATED = "truncated"


@dataclass(frozen=True)
class CleanText:
    text: str
    reason: str | None      # set when the report cannot carry labels (empty, binary junk)
    notes: tuple[str, ...]   # harmless repairs worth recording (html stripped, truncated)


def _pad_entity(match: re.Match) -> str:
    raw = match.group(0)
    value = html.unescape(raw)
    if len(value) != 1:
        return " " * len(raw)
    if value == "\xa0":
        value = " "
    return value + " " * (len(raw) - 1)


def clean_report_text(value, max_chars: int) -> CleanText:
    """Normalise one report cell; ``None``/NaN/blank -> reason ``empty_report``."""
    if value is None or (isinstance(value, float) and value != value):
        return CleanText("", EMPTY, ())
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = str(value)
    notes: list[str] = []
    if len(text) > max_chars:
        # label statements sit in the impression near the top of a report; a multi-megabyte cell is
        # a concatenation or a paste accident, and cutting it keeps the run linear in time
        text = text[:max_chars]
        notes.append(TRUNCATED)
    if not text.strip():
        return CleanText("", EMPTY, tuple(notes))
    if "<" in text and ">" in text:
        stripped = _TAG.sub(lambda m: " " * len(m.group(0)), text)
        if stripped != text:
            notes.append("html_stripped")
            text = stripped
    if "&" in text:
        text = _ENTITY.sub(_pad_entity, text)
    text = _CONTROL.sub(" ", text)
    sample = text[:20000]
    raw = sample.encode("ascii", "ignore")
    letters = len(raw) - len(raw.translate(None, _ASCII_LETTERS))   # counted in C, not per character
    if letters / len(sample) < 0.2:
        # binary junk or a table of numbers: nothing here reads as a sentence
        return CleanText(text, UNREADABLE, tuple(notes))
    return CleanText(text, None, tuple(notes))
