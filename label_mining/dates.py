"""Examination and pathology dates as the sites write them — read exactly, or reported, never guessed.

Accepted (an optional time of day after a space, "T" or a comma is read and ignored):

* ISO 8601: ``2015-10-15``, ``2015/10/15``, ``2015-10-15T10:30:00Z``, ``2015-10-15 10:30``;
* DICOM DA / DT: ``20151015``, ``20151015103000.000000+0100``;
* local dates ``15.10.2015``, ``15/10/2015``, ``15-10-2015``, ``10/15/2015``: whether the first
  number is the day or the month is the site's locale, the policy's ``dates.order``
  (``day_first`` | ``month_first``) — never inferred from the values. A date that is impossible
  in that order (``10/15/2015`` under ``day_first``) is unreadable, not swapped.

Two-digit years, month names and impossible dates (``2015-13-45``) are unreadable.
:func:`read_date` says why; the callers put that reason in the label problems table.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

DateOrder = Literal["day_first", "month_first"]

_TIME = r"(?:[ T,]+\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d{1,6})?)?(?:\s*[AaPp]\.?[Mm]\.?)?(?:\s*(?:Z|[+-]\d{2}:?\d{2}))?)?"
_ISO = re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})" + _TIME)
_DICOM = re.compile(r"(\d{4})(\d{2})(\d{2})(?:\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?(?:[+-]\d{4})?")
_LOCAL = re.compile(r"(\d{1,2})([./-])(\d{1,2})\2(\d{4})" + _TIME)
_EMPTY = frozenset({"", "nan", "nat", "none", "null", "na", "n/a"})


def read_date(value, order: DateOrder) -> tuple[dt.date | None, str | None]:
    """``(date, None)``, ``(None, "empty")`` or ``(None, "unreadable")``."""
    if order not in ("day_first", "month_first"):
        raise ValueError(f"date order must be 'day_first' or 'month_first', got {order!r}")
    if value is None:
        return None, "empty"
    text = str(value).strip()
    if text.lower() in _EMPTY:
        return None, "empty"
    if m := _ISO.fullmatch(text):
        year, month, day = int(m.group(1)), int(m.group(3)), int(m.group(4))
    elif m := _DICOM.fullmatch(text):
        year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    elif m := _LOCAL.fullmatch(text):
        first, second, year = int(m.group(1)), int(m.group(3)), int(m.group(4))
        day, month = (first, second) if order == "day_first" else (second, first)
    else:
        return None, "unreadable"
    try:
        return dt.date(year, month, day), None
    except ValueError:
        return None, "unreadable"


def parse_date(value, order: DateOrder = "day_first") -> dt.date | None:
    """The date, or None when it is empty or unreadable (use :func:`read_date` to know which)."""
    return read_date(value, order)[0]
