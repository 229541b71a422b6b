"""End to end: ``reports.csv`` (+ pathology, structured labels, policy) -> Parquet label tables.

Streaming: the CSV is read record by record (:mod:`label_mining.inputs`), cut into chunks of
``chunk_rows`` reports, each chunk parsed (batched spaCy over the label-bearing sentences of all its
reports) and written as one Parquet row group before the next is read — memory does not grow with
the corpus, except for the accession numbers that occur more than once (double reading), whose
reports are held until the end and merged (:func:`aggregate.merge_readers`). ``n_process > 1``
parses chunks in worker processes (:mod:`label_mining.chunks` is what one chunk goes through);
results are written in input order, so the files do not depend on ``n_process``.

Identity: with ``key`` the output is pseudonymised (``accession_key``, ``patient_pid``, identifiers
masked in evidence text) — what the Dagster assets use; without it the caller's
``accession_number`` is kept (the standalone CLI).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curation.parquet_io import atomic_path
from label_mining.chunks import (ChunkResult, count_labels, current_context, emit_labels, final_records,
                                 init_worker, labels_table, process_chunk)
from label_mining.csv_io import BadRows
from label_mining.inputs import (LINE, OPTIONAL_REPORT_COLUMNS, REQUIRED_REPORT_COLUMNS, duplicated_accessions,
                                 load_pathology, report_chunks, report_columns)
from label_mining.malignancy import unattached_pathology
from label_mining.schemas import (CLI_KEY, PSEUDONYMISED_KEY, REPORT_PROBLEMS_SCHEMA, breast_labels_schema,
                                  report_mentions_schema)
from label_mining.structured_labels import StructuredLabels, load_structured_labels
from label_mining.uncertainty_policy import load_policy

BREAST_LABELS_FILE = "breast_labels.parquet"
REPORT_MENTIONS_FILE = "report_mentions.parquet"
PROBLEMS_FILE = "label_problems.parquet"


# ---------------------------------------------------------------------------------------------
@dataclass
class MiningSummary:
    n_reports: int = 0
    n_breast_rows: int = 0
    n_mentions: int = 0
    seconds: float = 0.0
    class_counts: dict[str, dict[str, int]] = field(default_factory=dict)   # task -> label ("missing") -> n
    share_u_positive: dict[str, float] = field(default_factory=dict)        # task -> share of present labels with u > 0
    report_outcomes: dict[str, int] = field(default_factory=dict)           # labelled / empty_report / ...
    problems: dict[str, int] = field(default_factory=dict)                  # reason -> rows
    policy_version: str = ""
    n_process: int = 1

    @property
    def reports_per_second(self) -> float:
        return self.n_reports / self.seconds if self.seconds else 0.0


def _table_only_chunks(structured: StructuredLabels, chunk_rows: int):
    """A dataset that ships a label table and no reports: its accessions, with no report text."""
    accessions = list(dict.fromkeys(acc for acc, _, _ in structured.breast))
    for start in range(0, len(accessions), chunk_rows):
        part = accessions[start:start + chunk_rows]
        cols = {c: [""] * len(part) for c in REQUIRED_REPORT_COLUMNS + OPTIONAL_REPORT_COLUMNS}
        cols[LINE] = [0] * len(part)
        cols["accession_number"] = part
        cols["report_text"] = [None] * len(part)
        yield start, cols


def mine_labels(reports_csv: str | Path | None, out_dir: str | Path, *, pathology_csv: str | Path | None = None,
                labels_csv: str | Path | None = None, policy_path: str | Path | None = None,
                context_rules_path: str | Path | None = None, n_process: int = 1, chunk_rows: int = 2000,
                key: bytes | None = None) -> MiningSummary:
    """Write ``breast_labels.parquet``, ``report_mentions.parquet`` and ``label_problems.parquet``.

    All three are written to temporary files beside the outputs and renamed only when the whole
    run succeeded: a failed or killed run leaves the previous outputs as they were."""
    if n_process < 1:
        raise ValueError(f"n_process must be >= 1, got {n_process}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    if reports_csv is None and labels_csv is None:
        raise ValueError("nothing to mine: give reports.csv, labels.csv or both")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    policy = load_policy(policy_path)
    pathology, path_problems = load_pathology(pathology_csv, policy)
    structured = load_structured_labels(labels_csv, policy) if labels_csv else StructuredLabels()
    report_bad = BadRows()
    if reports_csv is not None:
        report_columns(reports_csv, with_pathology=pathology_csv is not None)   # fail fast, before any work
        chunks = report_chunks(reports_csv, chunk_rows, report_bad, with_pathology=pathology_csv is not None)
        duplicated = duplicated_accessions(reports_csv)
    else:
        chunks, duplicated = _table_only_chunks(structured, chunk_rows), frozenset()
    key_column = PSEUDONYMISED_KEY if key is not None else CLI_KEY
    init_args = (str(policy_path) if policy_path else None, str(context_rules_path) if context_rules_path else None,
                 pathology, structured, duplicated, key)

    summary = MiningSummary(policy_version=policy.policy_version, n_process=n_process)
    chunk_counts: Counter = Counter()
    u_positive: Counter = Counter()
    outcomes: Counter = Counter()
    report_problems: list[tuple[int, str]] = []
    held: list = []
    attached: set[int] = set()
    seen: set[str] = set()
    dated: set[str] = set()

    with ExitStack() as stack:
        labels_tmp, mentions_tmp, problems_tmp = (stack.enter_context(atomic_path(out_dir / name)) for name in
                                                  (BREAST_LABELS_FILE, REPORT_MENTIONS_FILE, PROBLEMS_FILE))
        label_writer = stack.enter_context(pq.ParquetWriter(labels_tmp, breast_labels_schema(key_column)))
        mention_writer = stack.enter_context(pq.ParquetWriter(mentions_tmp, report_mentions_schema(key_column)))

        def write(result: ChunkResult) -> None:
            summary.n_reports += result.n_reports
            outcomes.update(result.reasons)
            report_problems.extend(result.problems)
            held.extend(result.held)
            attached.update(result.attached)
            seen.update(result.patients_seen)
            dated.update(result.patients_dated)
            label_writer.write_table(result.labels)
            mention_writer.write_table(result.mentions)
            summary.n_mentions += result.mentions.num_rows
            summary.n_breast_rows += result.labels.num_rows
            chunk_counts.update(result.class_counts)
            u_positive.update(result.u_positive)

        init_worker(*init_args)
        if n_process == 1:
            for chunk in chunks:
                write(process_chunk(chunk))
        else:
            if "fork" in mp.get_all_start_methods():
                # forked workers inherit the parser built above (spaCy pipeline, matchers, policy)
                pool = mp.get_context("fork").Pool(n_process)
            else:
                pool = mp.get_context("spawn").Pool(n_process, initializer=init_worker, initargs=init_args)
            with pool:
                for result in pool.imap(process_chunk, chunks, chunksize=1):
                    write(result)
        if held:
            # double-read examinations: all their reports are in; merge per accession, in first-seen order
            groups: dict[str, list] = {}
            for accession, patient, day, per_report in held:
                groups.setdefault(accession, []).append((patient, day, per_report))
            rows: list[tuple] = []
            ctx = current_context()
            for accession, items in groups.items():
                patient, day = items[0][0], items[0][1]
                emit_labels(rows, accession, patient,
                            final_records(accession, patient, day, [it[2] for it in items], ctx, attached), ctx)
            label_writer.write_table(labels_table(rows, key_column))
            summary.n_breast_rows += len(rows)
            count_labels(rows, chunk_counts, u_positive)

        problems: list[tuple[str, int, str]] = [("pathology.csv", r, why) for r, why in path_problems]
        problems += [("pathology.csv", r, why) for r, why in unattached_pathology(pathology, attached, seen, dated, policy)]
        problems += [("labels.csv", r, why) for r, why in structured.problems]
        problems += [("reports.csv", r or 0, why) for r, why in report_bad.rows]
        problems += [("reports.csv", r, why) for r, why in report_problems]
        pq.write_table(pa.Table.from_pydict({"file": [p[0] for p in problems], "row": [p[1] for p in problems],
                                             "reason": [p[2] for p in problems]}, schema=REPORT_PROBLEMS_SCHEMA),
                       problems_tmp)
    class_counts: dict[str, dict[str, int]] = defaultdict(dict)
    present: Counter = Counter()
    for (task, label), n in chunk_counts.items():
        class_counts[task][label] = n
        if label != "missing":
            present[task] += n
    summary.class_counts = {t: dict(sorted(c.items())) for t, c in sorted(class_counts.items())}
    summary.share_u_positive = {t: round(u_positive[t] / present[t], 4) if present[t] else 0.0
                                for t in sorted(class_counts)}
    summary.report_outcomes = dict(sorted(outcomes.items()))
    summary.problems = dict(sorted(Counter(f"{f}:{why.split(':')[0]}" for f, _, why in problems).items()))
    summary.seconds = time.perf_counter() - started
    return summary


