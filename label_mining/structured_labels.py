"""Structured labels (``labels.csv``) for datasets that ship tables instead of reports (INbreast-style).

The user-facing contract (columns, values, rules, an example) is ``docs/labels_csv.md``; keep the two in step.

Columns (any subset of the label columns; names are case-insensitive):

* key: ``accession_number`` (required); ``laterality`` L/R (empty or B = both breasts);
  ``sop_instance_uid`` makes the row an image-level label (view, or per-image overrides);
* labels: ``birads`` (alias ``acr``; 1–6, 4A–4C; 0 = incomplete is reported and left missing), ``density`` (A–D or 1–4), ``malignancy``
  (alias ``breastbin``; 1/0, malignant/benign, yes/no), ``view`` (CC, MLO, ML);
* optional uncertainty: ``u`` for the whole row or ``u_<task>`` per task, in [0, 1].

A value that cannot be read is not guessed: the cell is reported in ``problems`` (row number and
reason — never the value, which may be an identifier) and that label is left out.
Merge rule with the report (:func:`merge_structured`): the table is a curated source and wins
over text mining; where they disagree the label keeps the table's value, gets the
``source_disagreement`` term and the conflict flag, so a reviewer sees it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from curation.tasks import ConflictKind
from label_mining.csv_io import BadRows, read_csv_strings

from label_mining.label_record import LabelRecord
from label_mining.uncertainty_policy import UncertaintyPolicy, combine

ALIASES = {"birads": "acr", "bi-rads": "acr", "acr": "acr", "density": "density", "malignancy": "breastbin",
           "breastbin": "breastbin", "view": "view"}
_MALIGNANT = {"1": "1", "malignant": "1", "yes": "1", "true": "1", "cancer": "1",
              "0": "0", "benign": "0", "no": "0", "false": "0", "normal": "0"}
_VIEW = {"cc": "CC", "mlo": "MLO", "ml": "MLO", "lm": "MLO", "xccl": "CC", "xccm": "CC"}


def normalise_value(task: str, raw: str) -> tuple[str | None, str | None]:
    """(label, detail) or (None, None) when the cell cannot be read as this task's label."""
    text = raw.strip().upper().replace("BI-RADS", "").replace("BIRADS", "").replace("ACR", "").strip(" :")
    if task == "acr":
        if text in ("1", "2", "3", "4", "5", "6"):  # BI-RADS 0 (incomplete) is no assessment: see the loader
            return text, None
        if text in ("4A", "4B", "4C"):
            return "4", text
        return None, None
    if task == "density":
        if text in ("A", "B", "C", "D"):
            return text, None
        return {"1": "A", "2": "B", "3": "C", "4": "D"}.get(text), None
    if task == "breastbin":
        return _MALIGNANT.get(text.lower()), None
    if task == "view":
        return _VIEW.get(text.lower()), None
    raise ValueError(f"unknown task {task!r}")


@dataclass
class StructuredLabels:
    breast: dict[tuple[str, str, str], LabelRecord] = field(default_factory=dict)   # (accession, side, task)
    image: dict[tuple[str, str], LabelRecord] = field(default_factory=dict)          # (sop_instance_uid, task)
    problems: list[tuple[int, str]] = field(default_factory=list)                   # (row number, reason)


def _u_of(row: dict, task: str, header_task: str) -> tuple[float | None, str | None]:
    for col in (f"u_{header_task}", f"u_{task}", "u"):
        raw = (row.get(col) or "").strip()
        if raw:
            try:
                u = float(raw)
            except ValueError:
                return None, f"{col}_not_a_number"
            if not 0.0 <= u <= 1.0:
                return None, f"{col}_outside_0_1"
            return u, None
    return 0.0, None


def load_structured_labels(path: str | Path, policy: UncertaintyPolicy) -> StructuredLabels:
    bad = BadRows()
    table = read_csv_strings(path, bad_rows=bad)
    rows = table.to_pylist()
    out = StructuredLabels()
    out.problems.extend((n or 0, f"malformed_csv_row: {why}") for n, why in bad.rows)
    if not rows:
        return out
    columns = {c.lower().strip(): c for c in table.column_names}
    if "accession_number" not in columns:
        raise ValueError(f"{path}: labels.csv needs an 'accession_number' column; found {table.column_names}")
    label_cols = {col: ALIASES[col] for col in columns if col in ALIASES}
    if not label_cols:
        raise ValueError(f"{path}: no label column; expected any of birads/acr, density, malignancy/breastbin, view")
    base_u = policy.sources.structured
    for number, raw_row in enumerate(rows, start=2):  # row 1 is the header
        row = {k.lower().strip(): (v if v is not None else "") for k, v in raw_row.items()}
        accession = row.get("accession_number", "").strip()
        sop = row.get("sop_instance_uid", "").strip()
        side = row.get("laterality", "").strip().upper()[:1]
        if not accession and not sop:
            out.problems.append((number, "missing_accession_number"))
            continue
        if side not in ("", "L", "R", "B"):
            out.problems.append((number, "laterality_not_L_R_or_B"))
            continue
        for col, task in label_cols.items():
            cell = row.get(col, "").strip()
            if not cell:
                continue
            label, detail = normalise_value(task, cell)
            if label is None and task == "acr" and \
                    cell.upper().replace("BI-RADS", "").replace("BIRADS", "").strip(" :") == "0":
                out.problems.append((number, f"{col}_0_is_an_incomplete_assessment_left_missing"))
                continue
            if label is None:
                out.problems.append((number, f"{col}_not_a_valid_{task}_label"))
                continue
            u, why = _u_of(row, task, col)
            if why:
                out.problems.append((number, why))
                continue
            record = LabelRecord(task, label, combine(base_u, u), "structured", f"structured.{col}",
                                 f"labels.csv row {number}: {col}={label if detail is None else detail}",
                                 detail=detail)
            if sop:
                out.image[(sop, task)] = record
            elif task == "view":
                out.problems.append((number, "view_needs_sop_instance_uid"))
            else:
                for s in (("L", "R") if side in ("", "B") else (side,)):
                    out.breast[(accession, s, task)] = record
    return out


def merge_structured(mined: LabelRecord, table: LabelRecord | None, policy: UncertaintyPolicy) -> LabelRecord:
    if table is None:
        return mined
    if mined.label is None or mined.label == table.label:
        return table
    return table.with_(u=combine(table.u, policy.terms.source_disagreement), conflict=True,
                       conflict_kind=ConflictKind.TABLE_VS_REPORT, rule_id=table.rule_id + "+report_disagrees",
                       evidence=f"{table.evidence} | report: {mined.evidence}"[:300])
