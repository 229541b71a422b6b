"""Arrow-native CSV reading: every column as text, quoted newlines allowed, streamed in blocks.

Reading every column as a string keeps identifiers intact ("0012345" is not the number 12345) and
leaves value parsing to the code that knows what a cell means. Malformed rows (wrong number of
fields) are skipped and counted by row number, never silently.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv


def read_header(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CSV file not found: {path}")
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as fh:
        try:
            return next(csv.reader(fh))
        except StopIteration:
            raise ValueError(f"{path} is empty: expected a header row") from None


@dataclass
class BadRows:
    rows: list[tuple[int | None, str]] = field(default_factory=list)  # (row number if known, reason)

    def handler(self, row) -> str:
        self.rows.append((getattr(row, "number", None), f"expected {row.expected_columns} fields, got {row.actual_columns}"))
        return "skip"


def open_csv_stream(path: str | Path, block_size: int = 1 << 22, bad_rows: BadRows | None = None):
    """A pyarrow streaming reader yielding RecordBatches of string columns."""
    header = read_header(path)
    bad_rows = bad_rows if bad_rows is not None else BadRows()
    return pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=block_size, use_threads=False, encoding="utf8"),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=bad_rows.handler),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in header},
                                             strings_can_be_null=False, quoted_strings_can_be_null=False),
    )


def read_csv_strings(path: str | Path, columns: list[str] | None = None, bad_rows: BadRows | None = None) -> pa.Table:
    header = read_header(path)
    bad_rows = bad_rows if bad_rows is not None else BadRows()
    return pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(use_threads=False),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=bad_rows.handler),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in header},
                                             include_columns=columns, strings_can_be_null=False,
                                             quoted_strings_can_be_null=False),
    )
