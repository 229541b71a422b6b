"""One chunk of reports -> Arrow tables of labels and mentions, plus counts (what a worker does).

Per process, :func:`init_worker` builds the parser (spaCy pipeline, matchers) and the policy once;
:func:`process_chunk` parses a chunk's reports in one batch, turns each into per-breast records
(:func:`final_records`: readers merged, structured labels, pathology, the policy's handling) and
returns them as Arrow tables — cheap to pickle from a worker, written as they are by
:func:`label_mining.pipeline.mine_labels`. Reports of accessions that occur more than once
(double reading) are held back and merged by the parent at the end.
"""

from __future__ import annotations

import gc
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field

import pyarrow as pa

from curation.pseudonym import pseudonymise
from curation.tasks import BREAST_TASKS, ConflictKind
from label_mining.aggregate import SIDES, merge_readers, report_labels
from label_mining.dates import read_date
from label_mining.handling import apply_handling
from label_mining.inputs import LINE
from label_mining.label_record import LabelRecord
from label_mining.malignancy import PathologyRecord, attaches, breastbin_label, withhold_if_contradicted
from label_mining.report_parser import ParsedReport, ReportParser
from label_mining.schemas import CLI_KEY, PSEUDONYMISED_KEY, breast_labels_schema, report_mentions_schema
from label_mining.scrub import scrub
from label_mining.structured_labels import StructuredLabels, merge_structured
from label_mining.uncertainty_policy import UncertaintyPolicy, load_policy


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


def init_worker(policy_path, context_rules_path, pathology, structured, duplicated, key):
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


def emit_labels(rows: list[tuple], accession: str, patient: str, records, ctx: _Context) -> None:
    """Append one tuple per (side, task) in ``LABEL_COLS`` order (columns are built by one zip)."""
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


def current_context() -> _Context:
    """This process's state (built by :func:`init_worker`)."""
    return _CTX


def labels_table(rows: list[tuple], key_column: str) -> pa.Table:
    """Rows built by :func:`emit_labels` -> the breast_labels table."""
    return label_table(_columns(rows, LABEL_COLS), key_column)


def _columns(rows: list[tuple], names: tuple[str, ...]) -> dict[str, list]:
    if not rows:
        return {c: [] for c in names}
    return {c: list(v) for c, v in zip(names, zip(*rows))}


LABEL_COLS = ("key", "patient_pid", "breast_key", "laterality", "task", "label", "u", "weight", "source",
               "rule_id", "evidence", "conflict", "policy_version", "label_detail", "missing_reason",
               "conflict_kind")
MENTION_COLS = ("key", "report_row", "section", "span_start", "span_end", "text", "type", "value", "laterality",
                 "laterality_source", "modifiers", "rule_id")


@contextmanager
def cycle_collector_paused():
    """A chunk builds some 200,000 short-lived tuples and records and no reference cycles, and each
    gen-2 pass of the cyclic collector walks the parser's long-lived spaCy structures again (measured:
    ~20 % of a run's CPU). Reference counting frees everything as usual; the collector is back on
    (if it was on) as soon as the chunk is done."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def process_chunk(args) -> ChunkResult:
    with cycle_collector_paused():
        return _process_chunk(args)


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
        emit_labels(label_rows, accession, patient,
                     final_records(accession, patient, day, [per_report], ctx, result.attached), ctx)
    key_column = PSEUDONYMISED_KEY if ctx.key is not None else CLI_KEY
    result.labels = label_table(_columns(label_rows, LABEL_COLS), key_column)
    mcols = _columns(mention_rows, MENTION_COLS)
    mcols[key_column] = mcols.pop("key")
    result.mentions = pa.Table.from_pydict(mcols, schema=report_mentions_schema(key_column))
    count_labels(label_rows, result.class_counts, result.u_positive)
    return result


def count_labels(rows: list[tuple], class_counts: Counter, u_positive: Counter) -> None:
    task_i, label_i, u_i = LABEL_COLS.index("task"), LABEL_COLS.index("label"), LABEL_COLS.index("u")
    for row in rows:
        label = row[label_i]
        class_counts[(row[task_i], label if label is not None else "missing")] += 1
        if label is not None and row[u_i] > 0:
            u_positive[row[task_i]] += 1


def label_table(cols: dict[str, list], key_column: str) -> pa.Table:
    data = {c: v for c, v in cols.items() if c != "key"}
    data[key_column] = cols["key"]
    if key_column != PSEUDONYMISED_KEY:
        data.pop("patient_pid")
    return pa.Table.from_pydict(data, schema=breast_labels_schema(key_column))
