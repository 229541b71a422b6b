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
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curation.pseudonym import pseudonymise
from curation.tasks import BREAST_TASKS, ConflictKind
from label_mining.aggregate import SIDES, merge_readers, report_labels
from curation.parquet_io import atomic_path
from label_mining.csv_io import BadRows
from label_mining.dates import read_date
from label_mining.inputs import (LINE, OPTIONAL_REPORT_COLUMNS, REQUIRED_REPORT_COLUMNS, duplicated_accessions,
                                 load_pathology, report_chunks, report_columns)
from label_mining.handling import apply_handling
from label_mining.label_record import LabelRecord
from label_mining.malignancy import (PathologyRecord, attaches, breastbin_label, unattached_pathology,
                                    withhold_if_contradicted)
from label_mining.report_parser import ParsedReport, ReportParser
from label_mining.schemas import (CLI_KEY, PSEUDONYMISED_KEY, REPORT_PROBLEMS_SCHEMA, breast_labels_schema,
                                  report_mentions_schema)
from label_mining.scrub import scrub
from label_mining.structured_labels import StructuredLabels, load_structured_labels, merge_structured
from label_mining.uncertainty_policy import UncertaintyPolicy, load_policy

BREAST_LABELS_FILE = "breast_labels.parquet"
REPORT_MENTIONS_FILE = "report_mentions.parquet"
PROBLEMS_FILE = "label_problems.parquet"


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
    held: list[tuple[str, str, object, dict]]  # duplicated accessions: (accession, patient, date, report labels)
    problems: list[tuple[int, str]]           # (line of reports.csv, reason)
    attached: set[int] = field(default_factory=set)          # pathology.csv lines some examination used
    patients_seen: set[str] = field(default_factory=set)     # patients with pathology who have a report
    patients_dated: set[str] = field(default_factory=set)    # ... and one with a readable study date
    reasons: Counter = field(default_factory=Counter)
    n_reports: int = 0
    class_counts: Counter = field(default_factory=Counter)   # (task, label or "missing") -> n
    u_positive: Counter = field(default_factory=Counter)     # task -> present labels with u > 0


def _key_columns(accession: str, patient: str, ctx: _Context) -> tuple[str, str | None]:
    if ctx.key is None:
        return accession, None
    return pseudonymise(accession, "accession", ctx.key), pseudonymise(patient, "patient", ctx.key)


def final_records(accession: str, patient: str, day, per_report: list[dict], ctx: _Context,
                  attached: set[int] | None = None) -> dict[tuple[str, str], LabelRecord]:
    """Merge readers, structured labels, pathology and the policy's handling for one examination
    (``day``: its study date, None when empty or unreadable). The pathology.csv lines this
    examination can use are added to ``attached``."""
    policy = ctx.policy
    merged = merge_readers(per_report, policy)
    out = {}
    for side in SIDES:
        acr = merge_structured(merged[(side, "acr")], ctx.structured.breast.get((accession, side, "acr")), policy)
        density = merge_structured(merged[(side, "density")],
                                   ctx.structured.breast.get((accession, side, "density")), policy)
        pathology = [p for p in ctx.pathology.get(patient, ()) if p.laterality == side]
        breastbin = breastbin_label(acr, pathology, day, policy)
        if pathology:
            if day is None:
                breastbin = withhold_if_contradicted(breastbin, pathology, policy)
            elif attached is not None:
                attached.update(p.row for p in pathology if attaches(p, day, policy))
        table_bb = ctx.structured.breast.get((accession, side, "breastbin"))
        if table_bb is not None:
            if breastbin.source in ("biopsy", "surgery", "follow_up"):
                if breastbin.label != table_bb.label:   # tissue outranks a table; the disagreement is shown
                    breastbin = breastbin.with_(conflict=True, conflict_kind=ConflictKind.TABLE_VS_PATHOLOGY,
                                                rule_id=breastbin.rule_id + "+table_disagrees")
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
                         rec.missing_reason, rec.conflict_kind))


def _columns(rows: list[tuple], names: tuple[str, ...]) -> dict[str, list]:
    if not rows:
        return {c: [] for c in names}
    return {c: list(v) for c, v in zip(names, zip(*rows))}


_LABEL_COLS = ("key", "patient_pid", "breast_key", "laterality", "task", "label", "u", "weight", "source",
               "rule_id", "evidence", "conflict", "policy_version", "label_detail", "missing_reason",
               "conflict_kind")
_MENTION_COLS = ("key", "report_row", "section", "span_start", "span_end", "text", "type", "value", "laterality",
                 "laterality_source", "modifiers", "rule_id")


def _process_chunk(args) -> ChunkResult:
    row0, columns = args
    ctx = _CTX
    n = len(columns["report_text"])
    parsed: list[ParsedReport] = ctx.parser.parse_many(columns["report_text"])
    mention_rows: list[tuple] = []
    label_rows: list[tuple] = []
    result = ChunkResult(None, None, [], [], n_reports=n)
    for i in range(n):
        accession = (columns["accession_number"][i] or "").strip()
        patient = (columns["patient_id"][i] or "").strip()
        line = columns[LINE][i]
        report = parsed[i]
        if not accession:
            result.problems.append((line, "missing_accession_number"))
            continue
        day, date_why = read_date(columns["study_date"][i], ctx.policy.dates.order)
        has_pathology = patient in ctx.pathology
        if date_why == "unreadable":
            result.problems.append((line, f"unreadable_study_date: read with dates.order={ctx.policy.dates.order}"
                                          + ("; the patient's pathology is not attached to this exam"
                                             if has_pathology else "")))
        elif date_why == "empty" and has_pathology:
            result.problems.append((line, "missing_study_date: the patient's pathology is not attached to this exam"))
        if has_pathology:
            result.patients_seen.add(patient)
            if day is not None:
                result.patients_dated.add(patient)
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
            result.held.append((accession, patient, day, per_report))
            continue
        _emit_labels(label_rows, accession, patient,
                     final_records(accession, patient, day, [per_report], ctx, result.attached), ctx)
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

        _init_worker(*init_args)
        if n_process == 1:
            for chunk in chunks:
                write(_process_chunk(chunk))
        else:
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
                             final_records(accession, patient, day, [it[2] for it in items], _CTX, attached), _CTX)
            label_writer.write_table(_label_table(_columns(rows, _LABEL_COLS), key_column))
            summary.n_breast_rows += len(rows)
            _count_labels(rows, chunk_counts, u_positive)

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


def _label_table(cols: dict[str, list], key_column: str) -> pa.Table:
    data = {c: v for c, v in cols.items() if c != "key"}
    data[key_column] = cols["key"]
    if key_column != PSEUDONYMISED_KEY:
        data.pop("patient_pid")
    return pa.Table.from_pydict(data, schema=breast_labels_schema(key_column))
