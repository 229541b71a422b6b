"""End to end: ``reports.csv`` (+ pathology, structured labels, policy) -> Parquet label tables.

Streaming: the CSV is read by Arrow in blocks, cut into chunks of ``chunk_rows`` reports, each
chunk parsed (batched spaCy over the label-bearing sentences of all its reports) and written as
one Parquet row group before the next is read — memory does not grow with the corpus, except for
the accession numbers that occur more than once (double reading), whose reports are held until
the end and merged (:func:`aggregate.merge_readers`). ``n_process > 1`` parses chunks in worker
processes; results are written in input order, so the files do not depend on ``n_process``.

Identity: with ``key`` the output is pseudonymised (``accession_key``, ``patient_pid``, identifiers
masked in evidence text) — what the Dagster assets use; without it the caller's
``accession_number`` is kept (the standalone CLI).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.pseudonym import pseudonymise
from label_mining.aggregate import SIDES, merge_readers, report_labels
from label_mining.csv_io import BadRows, open_csv_stream, read_csv_strings, read_header
from label_mining.handling import apply_handling
from label_mining.label_record import LabelRecord
from label_mining.malignancy import RESULTS, SOURCES, PathologyRecord, breastbin_label, parse_date
from label_mining.report_parser import ParsedReport, ReportParser
from label_mining.schemas import (CLI_KEY, PSEUDONYMISED_KEY, REPORT_PROBLEMS_SCHEMA, breast_labels_schema,
                                  report_mentions_schema)
from label_mining.scrub import scrub
from label_mining.structured_labels import StructuredLabels, load_structured_labels, merge_structured
from label_mining.uncertainty_policy import UncertaintyPolicy, load_policy

REQUIRED_REPORT_COLUMNS = ("accession_number", "report_text")
OPTIONAL_REPORT_COLUMNS = ("patient_id", "study_date", "reader_id", "reader_level")
PATHOLOGY_COLUMNS = ("patient_id", "laterality", "date", "result", "source")
BREAST_TASKS = ("breastbin", "acr", "density")

BREAST_LABELS_FILE = "breast_labels.parquet"
REPORT_MENTIONS_FILE = "report_mentions.parquet"
PROBLEMS_FILE = "label_problems.parquet"


# ---------------------------------------------------------------------------------------------
# inputs
def load_pathology(path: str | Path | None) -> tuple[dict[str, list[PathologyRecord]], list[tuple[int, str]]]:
    """patient_id -> records; unreadable rows are reported (row number, reason), never guessed."""
    if path is None:
        return {}, []
    header = [c.strip().lower() for c in read_header(path)]
    absent = [c for c in PATHOLOGY_COLUMNS if c not in header]
    if absent:
        raise ValueError(f"{path}: pathology.csv lacks columns {absent} (expected {list(PATHOLOGY_COLUMNS)})")
    bad = BadRows()
    table = read_csv_strings(path, bad_rows=bad)
    table = table.rename_columns([c.strip().lower() for c in table.column_names])
    problems: list[tuple[int, str]] = [(n or 0, f"malformed_csv_row: {why}") for n, why in bad.rows]
    records: dict[str, list[PathologyRecord]] = defaultdict(list)
    for i, row in enumerate(table.select(list(PATHOLOGY_COLUMNS)).to_pylist()):
        pid = (row["patient_id"] or "").strip()
        side = (row["laterality"] or "").strip().upper()
        day = parse_date(row["date"])
        result = (row["result"] or "").strip().lower()
        source = (row["source"] or "").strip().lower().replace("-", "_").replace(" ", "_")
        why = ("missing_patient_id" if not pid else "laterality_not_L_or_R" if side not in ("L", "R")
               else "unreadable_date" if day is None else "result_not_malignant_benign_or_high_risk"
               if result not in RESULTS else "source_not_biopsy_surgery_or_follow_up" if source not in SOURCES else None)
        if why:
            problems.append((i, why))
            continue
        records[pid].append(PathologyRecord(side, day, result, source))
    return dict(records), problems


# ---------------------------------------------------------------------------------------------
# per-process state (built once per worker)
@dataclass
class _Context:
    policy: UncertaintyPolicy
    parser: ReportParser
    pathology: dict[str, list[PathologyRecord]]
    structured: StructuredLabels
    duplicated: frozenset[str]
    key: bytes | None


_CTX: _Context | None = None


def _init_worker(policy_path, context_rules_path, pathology, structured, duplicated, key):
    global _CTX
    policy = load_policy(policy_path)
    _CTX = _Context(policy, ReportParser(policy.parser, context_rules_path), pathology, structured,
                    frozenset(duplicated), key)


@dataclass
class ChunkResult:
    """What a worker sends back: Arrow tables (cheap to pickle, written as they are) and counts."""
    mentions: pa.Table | None
    labels: pa.Table | None
    held: list[tuple[str, str, str, dict]]    # duplicated accessions: (accession, patient, date, report labels)
    problems: list[tuple[int, str]]
    reasons: Counter = field(default_factory=Counter)
    n_reports: int = 0
    class_counts: Counter = field(default_factory=Counter)   # (task, label or "missing") -> n
    u_positive: Counter = field(default_factory=Counter)     # task -> present labels with u > 0


def _key_columns(accession: str, patient: str, ctx: _Context) -> tuple[str, str | None]:
    if ctx.key is None:
        return accession, None
    return pseudonymise(accession, "accession", ctx.key), pseudonymise(patient, "patient", ctx.key)


def final_records(accession: str, patient: str, study_date: str, per_report: list[dict],
                  ctx: _Context) -> dict[tuple[str, str], LabelRecord]:
    """Merge readers, structured labels, pathology and the policy's handling for one examination."""
    policy = ctx.policy
    merged = merge_readers(per_report, policy)
    day = parse_date(study_date)
    out = {}
    for side in SIDES:
        acr = merge_structured(merged[(side, "acr")], ctx.structured.breast.get((accession, side, "acr")), policy)
        density = merge_structured(merged[(side, "density")],
                                   ctx.structured.breast.get((accession, side, "density")), policy)
        pathology = [p for p in ctx.pathology.get(patient, ()) if p.laterality == side]
        breastbin = breastbin_label(acr, pathology, day, policy)
        table_bb = ctx.structured.breast.get((accession, side, "breastbin"))
        if table_bb is not None:
            if breastbin.source in ("biopsy", "surgery", "follow_up"):
                if breastbin.label != table_bb.label:   # tissue outranks a table; the disagreement is shown
                    breastbin = breastbin.with_(conflict=True, rule_id=breastbin.rule_id + "+table_disagrees")
            else:
                breastbin = merge_structured(breastbin, table_bb, policy)
        for task, rec in (("breastbin", breastbin), ("acr", acr), ("density", density)):
            out[(side, task)] = apply_handling(rec, policy)
    return out


def _emit_labels(rows: list[tuple], accession: str, patient: str, records, ctx: _Context) -> None:
    """Append one tuple per (side, task) in ``_LABEL_COLS`` order (columns are built by one zip)."""
    key, pid = _key_columns(accession, patient, ctx)
    version = ctx.policy.policy_version
    scrubbing = ctx.key is not None
    for side in SIDES:
        breast_key = f"{key}:{side}"
        for task in BREAST_TASKS:
            rec = records[(side, task)]
            rows.append((key, pid, breast_key, side, task, rec.label, rec.u, rec.weight, rec.source, rec.rule_id,
                         scrub(rec.evidence) if scrubbing else rec.evidence, rec.conflict, version, rec.detail,
                         rec.missing_reason))


def _columns(rows: list[tuple], names: tuple[str, ...]) -> dict[str, list]:
    if not rows:
        return {c: [] for c in names}
    return {c: list(v) for c, v in zip(names, zip(*rows))}


_LABEL_COLS = ("key", "patient_pid", "breast_key", "laterality", "task", "label", "u", "weight", "source",
               "rule_id", "evidence", "conflict", "policy_version", "label_detail", "missing_reason")
_MENTION_COLS = ("key", "report_row", "section", "span_start", "span_end", "text", "type", "value", "laterality",
                 "laterality_source", "modifiers", "rule_id")


def _process_chunk(args) -> ChunkResult:
    row0, columns = args
    ctx = _CTX
    n = len(columns["report_text"])
    parsed: list[ParsedReport] = ctx.parser.parse_many(columns["report_text"])
    mention_rows: list[tuple] = []
    label_rows: list[tuple] = []
    result = ChunkResult({}, {}, [], [], Counter(), n)
    for i in range(n):
        accession = (columns["accession_number"][i] or "").strip()
        patient = (columns["patient_id"][i] or "").strip()
        report = parsed[i]
        if not accession:
            result.problems.append((row0 + i, "missing_accession_number"))
            continue
        result.reasons[report.reason or "labelled"] += 1
        for note in report.notes:
            result.reasons[f"note:{note}"] += 1
        if report.mentions:
            key, _ = _key_columns(accession, patient, ctx)
            scrubbing = ctx.key is not None
            for m in report.mentions:
                mention_rows.append((key, row0 + i, m.section, m.start, m.end, scrub(m.text) if scrubbing else m.text,
                                     m.type, ("-" if m.is_range else ",").join(m.values), m.laterality,
                                     m.laterality_source, sorted(m.modifiers), m.rule_id))
        per_report = report_labels(report, ctx.policy, columns["reader_level"][i])
        if accession in ctx.duplicated:
            result.held.append((accession, patient, columns["study_date"][i], per_report))
            continue
        _emit_labels(label_rows, accession, patient, final_records(accession, patient, columns["study_date"][i],
                                                                   [per_report], ctx), ctx)
    key_column = PSEUDONYMISED_KEY if ctx.key is not None else CLI_KEY
    result.labels = _label_table(_columns(label_rows, _LABEL_COLS), key_column)
    mcols = _columns(mention_rows, _MENTION_COLS)
    mcols[key_column] = mcols.pop("key")
    result.mentions = pa.Table.from_pydict(mcols, schema=report_mentions_schema(key_column))
    _count_labels(label_rows, result.class_counts, result.u_positive)
    return result


def _count_labels(rows: list[tuple], class_counts: Counter, u_positive: Counter) -> None:
    task_i, label_i, u_i = _LABEL_COLS.index("task"), _LABEL_COLS.index("label"), _LABEL_COLS.index("u")
    for row in rows:
        label = row[label_i]
        class_counts[(row[task_i], label if label is not None else "missing")] += 1
        if label is not None and row[u_i] > 0:
            u_positive[row[task_i]] += 1


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
        cols["accession_number"] = part
        cols["report_text"] = [None] * len(part)
        yield start, cols


def _chunks(reports_csv, chunk_rows: int, problems_out: list):
    bad = BadRows()
    reader = open_csv_stream(reports_csv, bad_rows=bad)
    names = [c.strip().lower() for c in reader.schema.names]
    absent = [c for c in REQUIRED_REPORT_COLUMNS if c not in names]
    if absent:
        raise ValueError(f"{reports_csv}: reports.csv lacks required columns {absent}; found {reader.schema.names}")
    row0 = 0
    for batch in reader:
        batch = batch.rename_columns(names)
        for start in range(0, batch.num_rows, chunk_rows):
            part = batch.slice(start, chunk_rows)
            cols = {c: part.column(c).to_pylist() if c in names else [""] * part.num_rows
                    for c in REQUIRED_REPORT_COLUMNS + OPTIONAL_REPORT_COLUMNS}
            yield row0, cols
            row0 += part.num_rows
    problems_out.extend((n or 0, f"malformed_csv_row: {why}") for n, why in bad.rows)


def _duplicated_accessions(reports_csv) -> frozenset[str]:
    """Accession numbers that occur more than once (double reading). Only this one column is kept in
    memory — the price of merging readers while streaming everything else."""
    header = read_header(reports_csv)
    name = next((c for c in header if c.strip().lower() == "accession_number"), None)
    if name is None:
        raise ValueError(f"{reports_csv}: reports.csv lacks required columns ['accession_number']; found {header}")
    column = read_csv_strings(reports_csv, columns=[name]).column(name)
    column = pc.utf8_trim_whitespace(column)
    counts = pc.value_counts(column)
    values, n = counts.field("values"), counts.field("counts")
    return frozenset(v for v in pc.filter(values, pc.greater(n, 1)).to_pylist() if v)


def mine_labels(reports_csv: str | Path | None, out_dir: str | Path, *, pathology_csv: str | Path | None = None,
                labels_csv: str | Path | None = None, policy_path: str | Path | None = None,
                context_rules_path: str | Path | None = None, n_process: int = 1, chunk_rows: int = 2000,
                key: bytes | None = None) -> MiningSummary:
    """Write ``breast_labels.parquet``, ``report_mentions.parquet`` and ``label_problems.parquet``."""
    if n_process < 1:
        raise ValueError(f"n_process must be >= 1, got {n_process}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    policy = load_policy(policy_path)
    pathology, path_problems = load_pathology(pathology_csv)
    structured = load_structured_labels(labels_csv, policy) if labels_csv else StructuredLabels()
    if reports_csv is None and labels_csv is None:
        raise ValueError("nothing to mine: give reports.csv, labels.csv or both")
    duplicated = _duplicated_accessions(reports_csv) if reports_csv is not None else frozenset()
    key_column = PSEUDONYMISED_KEY if key is not None else CLI_KEY
    label_schema = breast_labels_schema(key_column)
    mention_schema = report_mentions_schema(key_column)
    init_args = (str(policy_path) if policy_path else None, str(context_rules_path) if context_rules_path else None,
                 pathology, structured, duplicated, key)

    summary = MiningSummary(policy_version=policy.policy_version, n_process=n_process)
    chunk_counts: Counter = Counter()
    u_positive: Counter = Counter()
    outcomes: Counter = Counter()
    problems: list[tuple[str, int, str]] = [("pathology.csv", r, why) for r, why in path_problems]
    problems += [("labels.csv", r, why) for r, why in structured.problems]
    report_problems: list[tuple[int, str]] = []
    held: list = []

    label_writer = pq.ParquetWriter(out_dir / BREAST_LABELS_FILE, label_schema)
    mention_writer = pq.ParquetWriter(out_dir / REPORT_MENTIONS_FILE, mention_schema)

    def write(result: ChunkResult) -> None:
        summary.n_reports += result.n_reports
        outcomes.update(result.reasons)
        report_problems.extend(result.problems)
        held.extend(result.held)
        label_writer.write_table(result.labels)
        mention_writer.write_table(result.mentions)
        summary.n_mentions += result.mentions.num_rows
        summary.n_breast_rows += result.labels.num_rows
        chunk_counts.update(result.class_counts)
        u_positive.update(result.u_positive)

    try:
        chunks = (_chunks(reports_csv, chunk_rows, report_problems) if reports_csv is not None
                  else _table_only_chunks(structured, chunk_rows))
        if n_process == 1:
            _init_worker(*init_args)
            for chunk in chunks:
                write(_process_chunk(chunk))
        else:
            _init_worker(*init_args)
            if "fork" in mp.get_all_start_methods():
                # forked workers inherit the parser built above (spaCy pipeline, matchers, policy)
                pool = mp.get_context("fork").Pool(n_process)
            else:
                pool = mp.get_context("spawn").Pool(n_process, initializer=_init_worker, initargs=init_args)
            with pool:
                for result in pool.imap(_process_chunk, chunks, chunksize=1):
                    write(result)
        if held:
            # double-read examinations: all their reports are in; merge per accession, in first-seen order
            groups: dict[str, list] = {}
            for accession, patient, day, per_report in held:
                groups.setdefault(accession, []).append((patient, day, per_report))
            rows: list[tuple] = []
            for accession, items in groups.items():
                patient, day = items[0][0], items[0][1]
                _emit_labels(rows, accession, patient,
                             final_records(accession, patient, day, [it[2] for it in items], _CTX), _CTX)
            label_writer.write_table(_label_table(_columns(rows, _LABEL_COLS), key_column))
            summary.n_breast_rows += len(rows)
            _count_labels(rows, chunk_counts, u_positive)
    finally:
        label_writer.close()
        mention_writer.close()

    problems += [("reports.csv", r, why) for r, why in report_problems]
    pq.write_table(pa.Table.from_pydict({"file": [p[0] for p in problems], "row": [p[1] for p in problems],
                                         "reason": [p[2] for p in problems]}, schema=REPORT_PROBLEMS_SCHEMA),
                   out_dir / PROBLEMS_FILE)
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


def _label_table(cols: dict[str, list], key_column: str) -> pa.Table:
    data = {c: v for c, v in cols.items() if c != "key"}
    data[key_column] = cols["key"]
    if key_column != PSEUDONYMISED_KEY:
        data.pop("patient_pid")
    return pa.Table.from_pydict(data, schema=breast_labels_schema(key_column))
