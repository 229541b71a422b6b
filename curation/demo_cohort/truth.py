"""``truth.parquet``: what the generator meant — for tests and benchmarks, never the pipeline.

One table, two kinds of rows (``level``):

* ``image`` — one per file under ``dicom/`` (planted defects included, ``planted_defect``
  says which): the true laterality and view (whatever the header claims; ``tag_quirks``
  lists what was planted in the header), malignancy, BI-RADS (``acr``), density,
  ``lesion_boxes`` / ``text_boxes`` as ``[x0, y0, x1, y1]`` in stored-pixel coordinates
  (exclusive x1/y1), ``chest_wall_side`` (``left`` for L, ``right`` for R: see
  :mod:`.anatomy`), and the pixel encoding.
* ``breast`` — one per (exam, laterality): the true labels and the labels the report
  intends (``report_acr``, ``report_density``, ``report_malignant``: null where the report
  gives none), ``pathology_malignant`` (null without conclusive pathology/follow-up) and
  flags describing how the report says it. Double-read exams (two rows in reports.csv
  for one accession; the reading of record — always a senior's — comes first) add
  ``second_reader_acr``, ``second_reader_level`` and ``readers_disagree``; ``report_acr``
  stays the reading of record's.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curation.schemas import TRUTH_SCHEMA

SCHEMA = TRUTH_SCHEMA


def write_truth(rows: list[dict], path: Path) -> None:
    """Write rows (missing keys -> null) with a fixed schema; no pandas metadata, so bytes are stable."""
    columns = {name: [row.get(name) for row in rows] for name in SCHEMA.names}
    table = pa.table(columns, schema=SCHEMA)
    pq.write_table(table, path, compression="zstd", use_dictionary=False, write_statistics=False)
