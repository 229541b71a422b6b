"""Reading the sites' CSV exports: every column as text, any field size, bad quoting reported.

Every value is a string ("0012345" is not the number 12345); value parsing is left to the code
that knows what a cell means. Python's ``csv`` module does the splitting (C speed, quoted
newlines allowed, no block size — a 50 MB report cell reads; the parser cuts it at ``max_chars``).

Recovery is conservative. A record is used only when nothing about its quoting is suspicious;
otherwise it is skipped and reported with its first line number and the reason:

* wrong number of fields;
* a quote inside an unquoted field, text after a closing quote, or a quoted field still open at
  the end of the file — the marks an unbalanced quote leaves on the record that holds it and on
  the records it shifts;
* a line break inside a field other than the free-text column;
* a quoted multi-line free-text field with a line inside that reads as a record of its own —
  rows an unbalanced quote has swallowed; each such line is reported too.

Parsing resumes at the next physical line, so one stray quote costs the records it touches, all
reported, and never turns a fragment of one report into the accession number of another.
Row numbers in problems are 1-based physical line numbers (line 1 is the header).
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
_ID_MAX_CHARS = 128


def _open(path: Path):
    return path.open("r", encoding="utf-8-sig", errors="replace", newline="")


def read_header(path: str | Path) -> list[str]:
    """The header row; a duplicated column name (case and blanks ignored) is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CSV file not found: {path}")
    with _open(path) as fh:
        try:
            header = next(csv.reader(fh))
        except StopIteration:
            raise ValueError(f"{path} is empty: expected a header row") from None
    seen: dict[str, str] = {}
    for name in header:
        norm = name.strip().lower()
        if norm in seen:
            raise ValueError(f"{path}: column {name.strip()!r} appears more than once in the header "
                             f"(columns: {header}); rename or remove the duplicate")
        seen[norm] = name
    return header


@dataclass
class BadRows:
    rows: list[tuple[int | None, str]] = field(default_factory=list)  # (line number if known, reason)

    def add(self, line: int | None, reason: str) -> None:
        self.rows.append((line, reason))


# a record whose every field is either unquoted (no quote, comma or line break) or fully quoted ("" escapes):
# checked in C; only records that fail it are walked character by character to name the problem
_SOUND_FIELD = r'(?:"(?:[^"]++|"")*+"|[^",\r\n]*+)'
_SOUND_RECORD = re.compile(_SOUND_FIELD + r"(?:," + _SOUND_FIELD + r")*+(?:\r\n|\n|\r)?")


def quoting_problem(raw: str, quote: str = '"', delimiter: str = ",") -> str | None:
    """What is wrong with the quoting of one record's raw text, or None (only called when it has a quote)."""
    if quote == '"' and delimiter == "," and _SOUND_RECORD.fullmatch(raw):
        return None
    in_quotes, at_field_start, after_close = False, True, False
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if in_quotes:
            if c == quote:
                if i + 1 < n and raw[i + 1] == quote:
                    i += 2
                    continue
                in_quotes, after_close = False, True
        elif c == delimiter or c in "\r\n":
            at_field_start, after_close = True, False
            i += 1
            continue
        elif after_close:
            return "text_after_closing_quote"
        elif c == quote:
            if not at_field_start:
                return "quote_inside_unquoted_field"
            in_quotes = True
        at_field_start = False
        i += 1
    return "quoted_field_open_at_end_of_file" if in_quotes else None


def _looks_like_record(line: str, n_fields: int, id_index: int) -> bool:
    try:
        fields = next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return False
    if len(fields) != n_fields or id_index >= n_fields:
        return False
    ident = fields[id_index].strip()
    return bool(ident) and len(ident) <= _ID_MAX_CHARS and not any(ch.isspace() for ch in ident)


def _remembered(fh, buffer: list[str]):
    """The file's lines, each also appended to ``buffer`` (the caller empties it per record)."""
    for line in fh:
        buffer.append(line)
        yield line


def iter_records(path: str | Path, bad_rows: BadRows, text_column: str | None = None,
                 id_column: str | None = None) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) of every record whose shape and quoting are sound; the rest go to
    ``bad_rows``. ``text_column`` may hold line breaks; ``id_column`` is what a swallowed row starts with."""
    path = Path(path)
    header = read_header(path)
    names = [c.strip().lower() for c in header]
    n = len(names)
    text_i = names.index(text_column) if text_column in names else -1
    id_i = names.index(id_column) if id_column in names else 0
    with _open(path) as fh:
        buffer: list[str] = []
        reader = csv.reader(_remembered(fh, buffer))
        next(reader)                            # header (validated above)
        while True:
            buffer.clear()
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:            # e.g. a NUL byte
                bad_rows.add(reader.line_num, f"unreadable_csv_row: {exc}")
                continue
            last = reader.line_num              # physical lines read so far
            first = last - len(buffer) + 1
            raw = buffer[0] if len(buffer) == 1 else "".join(buffer)
            if not fields or (len(fields) == 1 and not fields[0].strip() and n > 1):
                continue                        # blank line
            why = quoting_problem(raw) if '"' in raw else None
            if why is None and len(fields) != n:
                why = f"expected {n} fields, got {len(fields)}"
            swallowed = []
            if len(buffer) > 1:
                if why is None and any(("\n" in f or "\r" in f) for j, f in enumerate(fields) if j != text_i):
                    why = "line_break_outside_the_text_column"
                swallowed = [first + k for k, line in enumerate(buffer[1:], start=1)
                             if _looks_like_record(line, n, id_i)]
                if swallowed and why is None:
                    why = "quoted_text_holds_lines_that_read_as_records"
            if why is None:
                yield first, fields
                continue
            span = f"line {first}" if len(buffer) == 1 else f"lines {first}-{last}"
            bad_rows.add(first, f"malformed_csv_row: {why} ({span}); record skipped")
            for line_no in swallowed:
                bad_rows.add(line_no, f"malformed_csv_row: row inside a record with {why} (line {line_no}); "
                                      "skipped, check the quotes above it")


def plain_records(path: str | Path) -> Iterator[list[str]]:
    """Data records as the csv module splits them, no checks (for cheap first passes)."""
    with _open(Path(path)) as fh:
        reader = csv.reader(fh)
        next(reader, None)
        try:
            yield from reader
        except csv.Error:
            return


def read_csv_strings(path: str | Path, columns: list[str] | None = None, bad_rows: BadRows | None = None,
                     text_column: str | None = None) -> pa.Table:
    """The whole file as a table of string columns (header names as written); bad rows reported."""
    header = read_header(path)
    bad_rows = bad_rows if bad_rows is not None else BadRows()
    lowered = [c.strip().lower() for c in header]
    keep = list(range(len(header))) if columns is None else [header.index(c) for c in columns]
    data: list[list[str]] = [[] for _ in keep]
    for _, fields in iter_records(path, bad_rows, text_column=text_column, id_column=lowered[0] if lowered else None):
        for slot, j in enumerate(keep):
            data[slot].append(fields[j])
    return pa.table({header[j]: pa.array(data[slot], pa.string()) for slot, j in enumerate(keep)})
