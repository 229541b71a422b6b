"""The input CSVs of label mining, read and checked before anything is mined.

``reports.csv`` is streamed in chunks of columns; ``pathology.csv`` is read whole (one row per
biopsy, surgery or follow-up — small). Every row that cannot be used is reported as
``(line, reason)``; a missing column that would silently switch a rule off is an error.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from label_mining.csv_io import BadRows, iter_records, plain_records, read_header
from label_mining.dates import read_date
from label_mining.malignancy import RESULTS, SOURCES, PathologyRecord
from label_mining.uncertainty_policy import UncertaintyPolicy

REQUIRED_REPORT_COLUMNS = ("accession_number", "report_text")
OPTIONAL_REPORT_COLUMNS = ("patient_id", "study_date", "reader_id", "reader_level")
PATHOLOGY_COLUMNS = ("patient_id", "laterality", "date", "result", "source")
LINE = "_line"   # the chunk column holding each report's line number in reports.csv


def report_columns(reports_csv: str | Path, with_pathology: bool) -> list[str]:
    """The lower-cased header of reports.csv, after checking it can do what was asked of it."""
    header = read_header(reports_csv)
    names = [c.strip().lower() for c in header]
    absent = [c for c in REQUIRED_REPORT_COLUMNS if c not in names]
    if absent:
        raise ValueError(f"{reports_csv}: reports.csv lacks required columns {absent}; found {header}")
    if with_pathology:
        absent = [c for c in ("patient_id", "study_date") if c not in names]
        if absent:
            raise ValueError(f"{reports_csv}: reports.csv has no {' or '.join(absent)} column, so pathology.csv "
                             f"cannot be attached to its examinations (found {header}); add the column(s) or "
                             "run without pathology.csv")
    return names


def report_chunks(reports_csv: str | Path, chunk_rows: int, bad: BadRows,
                  with_pathology: bool = False) -> Iterator[tuple[int, dict[str, list]]]:
    """``(first data row, columns)`` per chunk; columns include :data:`LINE`. Bad rows go to ``bad``."""
    names = report_columns(reports_csv, with_pathology)
    wanted = REQUIRED_REPORT_COLUMNS + OPTIONAL_REPORT_COLUMNS
    index = {c: names.index(c) for c in wanted if c in names}

    def empty() -> dict[str, list]:
        return {c: [] for c in wanted + (LINE,)}

    cols, row0, n = empty(), 0, 0
    for line, fields in iter_records(reports_csv, bad, text_column="report_text", id_column="accession_number"):
        for c in wanted:
            j = index.get(c)
            cols[c].append(fields[j] if j is not None else "")
        cols[LINE].append(line)
        n += 1
        if n == chunk_rows:
            yield row0, cols
            cols, row0, n = empty(), row0 + n, 0
    if n:
        yield row0, cols


def duplicated_accessions(reports_csv: str | Path) -> frozenset[str]:
    """Accession numbers that occur more than once (double reading). Only this one column is kept in
    memory — the price of merging readers while streaming the rest. A plain, fast pass: it may also
    count a fragment that :func:`report_chunks` rejects, which only makes that accession wait for the
    end of the run (merging one report gives that report's labels)."""
    names = report_columns(reports_csv, with_pathology=False)
    j = names.index("accession_number")
    seen: set[str] = set()
    twice: set[str] = set()
    for fields in plain_records(reports_csv):
        if j >= len(fields):
            continue
        accession = fields[j].strip()
        if accession in seen:
            twice.add(accession)
        else:
            seen.add(accession)
    twice.discard("")
    return frozenset(twice)


def load_pathology(path: str | Path | None, policy: UncertaintyPolicy
                   ) -> tuple[dict[str, list[PathologyRecord]], list[tuple[int, str]]]:
    """patient_id -> records; unreadable rows are reported (line, reason), never guessed."""
    if path is None:
        return {}, []
    names = [c.strip().lower() for c in read_header(path)]
    absent = [c for c in PATHOLOGY_COLUMNS if c not in names]
    if absent:
        raise ValueError(f"{path}: pathology.csv lacks columns {absent} (expected {list(PATHOLOGY_COLUMNS)})")
    index = {c: names.index(c) for c in PATHOLOGY_COLUMNS}
    bad = BadRows()
    problems: list[tuple[int, str]] = []
    records: dict[str, list[PathologyRecord]] = defaultdict(list)
    for line, fields in iter_records(path, bad, id_column="patient_id"):
        pid = fields[index["patient_id"]].strip()
        side = fields[index["laterality"]].strip().upper()
        day, date_why = read_date(fields[index["date"]], policy.dates.order)
        result = fields[index["result"]].strip().lower()
        source = fields[index["source"]].strip().lower().replace("-", "_").replace(" ", "_")
        why = ("missing_patient_id" if not pid else "laterality_not_L_or_R" if side not in ("L", "R")
               else f"{date_why}_date: read with dates.order={policy.dates.order}" if day is None
               else "result_not_malignant_benign_or_high_risk" if result not in RESULTS
               else "source_not_biopsy_surgery_or_follow_up" if source not in SOURCES else None)
        if why:
            problems.append((line, why))
            continue
        records[pid].append(PathologyRecord(side, day, result, source, line))
    problems[:0] = [(n or 0, why) for n, why in bad.rows]
    return dict(records), problems
