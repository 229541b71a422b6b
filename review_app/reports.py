"""Report text for an item, found by pseudonymised accession, with the evidence highlighted.

The label tables hold only pseudonymised keys. To show the report a reader wrote, the
cohort's ``reports.csv`` is read here and each raw ``accession_number`` is pseudonymised with
the site key to join; the raw accession, patient id and reader id are dropped on reading and
never reach a page, a log or the database; those values, any ``*name*`` column and labelled
MRN / birth-date / name patterns are masked in the text itself (:mod:`review_app.redact`).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from curation.home import MammoHome
from curation.pseudonym import pseudonymise
from review_app.redact import redact

# reports.csv columns whose values are identifiers: masked wherever they appear in the report text
IDENTIFIER_COLUMNS = ("accession_number", "patient_id", "reader_id", "patient_birth_date", "birth_date")


@dataclass(frozen=True)
class Report:
    row: int                # 0-based data row of reports.csv (report_mentions.report_row)
    text: str
    reader_level: str | None
    study_date: str | None


@dataclass(frozen=True)
class Segment:
    text: str
    evidence: bool
    related: bool = False   # another statement on the same question (the other reader's category)


class ReportIndex:
    """accession_key -> reports of that study, loaded per batch on first use."""

    def __init__(self, home: MammoHome, key: bytes):
        self._home = home
        self._key = key
        self._by_batch: dict[str, dict[str, list[Report]]] = {}
        self._problems: dict[str, str] = {}
        self._lock = threading.Lock()

    def reports(self, batch: str, accession_key: str | None) -> list[Report]:
        if not accession_key:
            return []
        with self._lock:
            if batch not in self._by_batch:
                self._by_batch[batch] = self._load(batch)
        return self._by_batch[batch].get(accession_key, [])

    def problem(self, batch: str) -> str | None:
        """Why a batch has no reports (missing file, missing columns), for the item page."""
        return self._problems.get(batch)

    def _load(self, batch: str) -> dict[str, list[Report]]:
        path = self._home.batch_root(batch) / "reports.csv"
        if not path.is_file():
            self._problems[batch] = f"no reports.csv in the {batch} cohort folder"
            return {}
        frame = pd.read_csv(path, dtype=str, keep_default_na=False,
                            usecols=lambda c: c in ("accession_number", "report_text", "reader_level",
                                                    "study_date", *IDENTIFIER_COLUMNS) or "name" in c.lower())
        id_columns = [c for c in frame.columns if c in IDENTIFIER_COLUMNS or "name" in c.lower()]
        if "accession_number" not in frame.columns or "report_text" not in frame.columns:
            self._problems[batch] = "reports.csv lacks accession_number or report_text"
            return {}
        out: dict[str, list[Report]] = {}
        for row, rec in enumerate(frame.to_dict("records")):
            acc = pseudonymise(rec["accession_number"], "accession", self._key)
            if acc is None:
                continue
            # identifiers masked before the text is kept for display (review_app/redact.py)
            text = redact(rec["report_text"], [rec[c] for c in id_columns])
            out.setdefault(acc, []).append(Report(row=row, text=text,
                                                  reader_level=rec.get("reader_level") or None,
                                                  study_date=rec.get("study_date") or None))
        return out


def _find(text: str, evidence: str) -> tuple[int, int] | None:
    """Case- and whitespace-insensitive search, returning the span in the original text."""
    words = evidence.split()
    if not words:
        return None
    pattern = r"\s+".join(re.escape(w) for w in words)
    match = re.search(pattern, text, flags=re.IGNORECASE)
    return (match.start(), match.end()) if match else None


def highlight(text: str, evidence: str | None, span_start: int | None = None,
              span_end: int | None = None, related: tuple[tuple[int, int], ...] = ()) -> list[Segment]:
    """Split ``text`` into plain, evidence and related segments (rendered escaped, in <mark>).

    The mined span (``report_mentions``; the caller passes it only for the report row it was
    mined from) is used when it lies inside the text; otherwise the label's evidence sentence is
    searched for. No match -> no evidence highlight, never a wrong one. ``related`` spans (other
    mentions of the task on this breast, e.g. the second reader's category) are marked apart;
    one overlapping the evidence is dropped.
    """
    span = None
    if span_start is not None and span_end is not None and 0 <= span_start < span_end <= len(text):
        span = (span_start, span_end)
    if span is None and evidence:
        span = _find(text, evidence)
    marks = [(span[0], span[1], True)] if span else []
    for s, e in sorted(related):
        if 0 <= s < e <= len(text) and all(e <= a or s >= b for a, b, _ in marks):
            marks.append((s, e, False))
    out, pos = [], 0
    for s, e, is_evidence in sorted(marks):
        if s > pos:
            out.append(Segment(text[pos:s], False))
        out.append(Segment(text[s:e], is_evidence, related=not is_evidence))
        pos = e
    if pos < len(text):
        out.append(Segment(text[pos:], False))
    return out


def report_source_path(home: MammoHome, batch: str) -> Path:
    return home.batch_root(batch) / "reports.csv"
