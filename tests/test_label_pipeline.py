"""End to end: reports.csv -> Parquet, through the CLI and the library, with bad rows and identities."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from label_mining.pipeline import mine_labels
from label_mining.schemas import breast_labels_schema, report_mentions_schema
from pipelines.cli import app
from tests.csv_inputs import write_csv

REPORTS = [
    ("ACC001", "PAT1", "2024-01-10", "No suspicious mass. BI-RADS 1 right, BI-RADS 4 left. Density: B/C", "r1", "senior"),
    ("ACC002", "PAT2", "2024-01-11", "Impression: Findings are probably benign. BI-RADS 3.", "r1", "junior"),
    ("ACC003", "PAT3", "2024-01-12", "", "r2", ""),
    ("ACC004", "PAT4", "2024-01-12", "Impression: BI-RADS 2.\nAddendum: revised to BI-RADS 4A.", "r2", "resident"),
    ("ACC004", "PAT4", "2024-01-12", "Impression: BI-RADS 5.", "r3", "senior"),
    ("", "PAT5", "2024-01-12", "Impression: BI-RADS 2.", "r3", "senior"),
    ("ACC006", "PAT6", "2024-01-13", "Comparaison: aucune. Conclusion: examen normal.", "r3", "senior"),
]
PATHOLOGY = [("PAT1", "L", "2024-02-01", "malignant", "biopsy"), ("PAT2", "R", "2026-06-01", "benign", "follow_up"),
             ("PAT2", "X", "2026-06-01", "benign", "follow_up")]


@pytest.fixture()
def inputs(tmp_path):
    reports = write_csv(tmp_path / "reports.csv", ["accession_number", "patient_id", "study_date", "report_text",
                                                   "reader_id", "reader_level"], REPORTS)
    pathology = write_csv(tmp_path / "pathology.csv", ["patient_id", "laterality", "date", "result", "source"],
                          PATHOLOGY)
    return reports, pathology


def labels_of(out):
    table = pq.read_table(out / "breast_labels.parquet").to_pylist()
    return {(r["accession_number"], r["laterality"], r["task"]): r for r in table}


def test_cli_writes_breast_labels_and_mentions_with_the_documented_columns(inputs, tmp_path):
    reports, pathology = inputs
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["labels", "--reports", str(reports), "--pathology", str(pathology),
                                      "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["reports"] == 7
    assert pq.read_schema(out / "breast_labels.parquet").equals(breast_labels_schema("accession_number"))
    assert pq.read_schema(out / "report_mentions.parquet").equals(report_mentions_schema("accession_number"))
    labels = labels_of(out)
    assert labels[("ACC001", "R", "acr")]["label"] == "1" and labels[("ACC001", "L", "acr")]["label"] == "4"
    assert labels[("ACC001", "L", "breastbin")]["source"] == "biopsy"
    assert labels[("ACC002", "L", "acr")]["label"] == labels[("ACC002", "R", "acr")]["label"] == "3"  # no side: both
    assert labels[("ACC002", "R", "breastbin")]["source"] == "follow_up"
    assert labels[("ACC003", "L", "acr")]["missing_reason"] == "empty_report"
    assert labels[("ACC006", "L", "density")]["missing_reason"] == "no_label_statements"


def test_every_label_row_keeps_weight_equal_to_one_minus_u_or_zero_when_missing(inputs, tmp_path):
    reports, pathology = inputs
    mine_labels(reports, tmp_path / "out", pathology_csv=pathology)
    for row in labels_of(tmp_path / "out").values():
        if row["label"] is None:
            assert (row["u"], row["weight"]) == (1.0, 0.0) and row["missing_reason"]
        else:
            assert 0.0 <= row["u"] < 1.0 and row["weight"] == pytest.approx(1.0 - row["u"])


def test_bad_rows_are_reported_not_dropped_silently(inputs, tmp_path):
    reports, pathology = inputs
    summary = mine_labels(reports, tmp_path / "out", pathology_csv=pathology)
    problems = pq.read_table(tmp_path / "out" / "label_problems.parquet").to_pylist()
    assert {(p["file"], p["reason"]) for p in problems} == {("reports.csv", "missing_accession_number"),
                                                            ("pathology.csv", "laterality_not_L_or_R")}
    assert summary.problems == {"pathology.csv:laterality_not_L_or_R": 1, "reports.csv:missing_accession_number": 1}


def test_two_readers_of_one_exam_are_merged_and_their_disagreement_flagged(inputs, tmp_path):
    reports, pathology = inputs
    mine_labels(reports, tmp_path / "out", pathology_csv=pathology)
    rows = [r for k, r in labels_of(tmp_path / "out").items() if k[0] == "ACC004" and k[2] == "acr"]
    assert len(rows) == 2                              # one row per breast, not per report
    assert all(r["label"] == "5" and r["conflict"] for r in rows)   # senior's 5 vs resident's 4A


def test_output_is_byte_identical_across_runs_and_process_counts(inputs, tmp_path):
    reports, pathology = inputs
    for name, n in (("a", 1), ("b", 1), ("c", 2)):
        mine_labels(reports, tmp_path / name, pathology_csv=pathology, n_process=n, chunk_rows=2)
    for f in ("breast_labels.parquet", "report_mentions.parquet", "label_problems.parquet"):
        data = (tmp_path / "a" / f).read_bytes()
        assert data == (tmp_path / "b" / f).read_bytes() == (tmp_path / "c" / f).read_bytes(), f


def test_pseudonymised_output_carries_no_raw_identifier(inputs, tmp_path):
    reports, pathology = inputs
    mine_labels(reports, tmp_path / "out", pathology_csv=pathology, key=b"test-key")
    blob = b"".join(p.read_bytes() for p in (tmp_path / "out").glob("*.parquet"))
    for raw in (b"ACC001", b"PAT1", b"2024-02-01"):
        assert raw not in blob
    row = pq.read_table(tmp_path / "out" / "breast_labels.parquet").to_pylist()[0]
    assert row["accession_key"].startswith("A-") and row["patient_pid"].startswith("P-")
    assert row["breast_key"] == f"{row['accession_key']}:{row['laterality']}"


def test_missing_required_column_fails_fast_naming_it(tmp_path):
    reports = write_csv(tmp_path / "r.csv", ["accession_number", "text"], [("A1", "BI-RADS 2")])
    with pytest.raises(ValueError, match="report_text"):
        mine_labels(reports, tmp_path / "out")


def test_a_label_table_without_reports_still_gives_labels(tmp_path):
    table = write_csv(tmp_path / "labels.csv", ["accession_number", "laterality", "birads", "density"],
                      [("T1", "L", "5", "C"), ("T1", "R", "1", "C")])
    mine_labels(None, tmp_path / "out", labels_csv=table)
    labels = labels_of(tmp_path / "out")
    assert labels[("T1", "L", "acr")]["label"] == "5" and labels[("T1", "L", "acr")]["source"] == "structured"
    assert labels[("T1", "L", "breastbin")]["label"] == "1"       # derived from the table's assessment
