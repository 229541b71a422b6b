"""Faulty inputs never become silent wrong labels, and a failed run never destroys the last good output."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from curation.parquet_io import atomic_path, write_text_atomic
from curation.tasks import ConflictKind
from label_mining import pipeline
from label_mining.dates import read_date
from label_mining.pipeline import mine_labels
from label_mining.uncertainty_policy import DEFAULT_POLICY_PATH, load_policy
from pipelines.cli import app
from tests.csv_inputs import write_csv

HEADER = ["accession_number", "patient_id", "study_date", "report_text"]
PATHOLOGY_HEADER = ["patient_id", "laterality", "date", "result", "source"]


def rows_of(path):
    return pq.read_table(path).to_pylist()


def labels_of(out):
    return {(r["accession_number"], r["laterality"], r["task"]): r for r in rows_of(out / "breast_labels.parquet")}


def problems_of(out):
    return rows_of(out / "label_problems.parquet")


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- item 1: dates ------------------------------------------------------------------------------
UNREADABLE_UNDER_DAY_FIRST = ["10/15/2015", "2015-13-45", "", "15/10/15", "Oct 15 2015"]
READABLE_UNDER_DAY_FIRST = ["15.10.2015 10:30", "15-10-2015", "15/10/2015", "2015-10-15T10:30:00", "20151015",
                            "20151015103000.000000+0100"]


@pytest.fixture()
def dated_cohort(tmp_path):
    dates = UNREADABLE_UNDER_DAY_FIRST + READABLE_UNDER_DAY_FIRST
    reports = [(f"ACC{i}", f"PAT{i}", d, "Impression: no suspicious findings. BI-RADS 2.") for i, d in enumerate(dates)]
    pathology = [(f"PAT{i}", "L", "2015-10-20", "malignant", "biopsy") for i in range(len(dates))]
    return (write_csv(tmp_path / "reports.csv", HEADER, reports),
            write_csv(tmp_path / "pathology.csv", PATHOLOGY_HEADER, pathology), dates)


def test_a_biopsy_proven_cancer_never_becomes_benign_when_the_exam_date_cannot_be_read(dated_cohort, tmp_path):
    reports, pathology, dates = dated_cohort
    mine_labels(reports, tmp_path / "out", pathology_csv=pathology)
    labels = labels_of(tmp_path / "out")
    problems = problems_of(tmp_path / "out")
    report_lines = {p["row"]: p["reason"] for p in problems if p["file"] == "reports.csv"}
    unattached = {p["row"] for p in problems if p["file"] == "pathology.csv"
                  and p["reason"].startswith("pathology_not_attached")}
    for i, day in enumerate(dates):
        left = labels[(f"ACC{i}", "L", "breastbin")]
        if day in READABLE_UNDER_DAY_FIRST:
            assert (left["label"], left["source"]) == ("1", "biopsy"), day
            assert i + 2 not in report_lines and i + 2 not in unattached
        else:
            # never the derived "benign" of BI-RADS 2: withheld and flagged for review
            assert left["label"] is None and left["weight"] == 0.0, day
            assert left["conflict"] and left["conflict_kind"] == ConflictKind.UNATTACHED_PATHOLOGY.value
            assert "study_date" in report_lines[i + 2], day          # reports.csv line of this exam
            assert i + 2 in unattached, day                          # pathology.csv line of its biopsy
        # the other breast has no pathology: the report's label stands
        assert labels[(f"ACC{i}", "R", "breastbin")]["label"] == "0"


def test_the_day_month_order_comes_from_the_policy_not_from_the_values(tmp_path):
    raw = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
    raw["dates"]["order"] = "month_first"
    us = tmp_path / "us.yaml"
    us.write_text(yaml.safe_dump(raw))
    assert read_date("05/04/2024", load_policy().dates.order)[0] == dt.date(2024, 4, 5)
    assert read_date("05/04/2024", load_policy(us).dates.order)[0] == dt.date(2024, 5, 4)
    assert read_date("10/15/2015", "day_first") == (None, "unreadable")     # impossible in that order: not swapped
    del raw["dates"]
    us.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="dates"):
        load_policy(us)


@settings(max_examples=80, deadline=None)
@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2099, 12, 31)),
       st.sampled_from(["day_first", "month_first"]),
       st.sampled_from(["", " 10:30", "T10:30:00", " 10:30:15.123", "T08:00:00Z", " 7:05 PM"]))
def test_every_documented_format_reads_back_the_same_day(day, order, clock):
    local = f"{day.day:02d}.{day.month:02d}.{day.year}" if order == "day_first" else \
        f"{day.month:02d}/{day.day:02d}/{day.year}"
    for text in (day.isoformat() + clock, day.strftime("%Y%m%d"), day.strftime("%Y/%m/%d"), local + clock):
        assert read_date(text, order) == (day, None), text


def test_pathology_of_a_patient_without_reports_is_reported(tmp_path):
    reports = write_csv(tmp_path / "r.csv", HEADER, [("A1", "P1", "2020-01-01", "BI-RADS 1.")])
    pathology = write_csv(tmp_path / "p.csv", PATHOLOGY_HEADER, [("P9", "R", "2020-01-05", "malignant", "surgery"),
                                                                  ("P1", "R", "2023-01-05", "malignant", "biopsy")])
    mine_labels(reports, tmp_path / "out", pathology_csv=pathology)
    reasons = {p["row"]: p["reason"] for p in problems_of(tmp_path / "out") if p["file"] == "pathology.csv"}
    assert "no report of this patient" in reasons[2]
    assert "no exam of this patient in the 180 days" in reasons[3]


# --- item 2: a join that cannot happen ------------------------------------------------------------
def test_reports_without_patient_id_and_a_pathology_file_fail_fast_naming_the_column(tmp_path):
    reports = write_csv(tmp_path / "r.csv", ["accession_number", "study_date", "report_text"],
                        [("A1", "2020-01-01", "BI-RADS 2.")])
    pathology = write_csv(tmp_path / "p.csv", PATHOLOGY_HEADER, [("P1", "L", "2020-01-05", "malignant", "biopsy")])
    with pytest.raises(ValueError, match="patient_id"):
        mine_labels(reports, tmp_path / "out", pathology_csv=pathology)
    mine_labels(reports, tmp_path / "out2")          # without pathology there is nothing to join: fine


# --- item 3: unbalanced quotes ---------------------------------------------------------------------
def test_an_unbalanced_quote_never_turns_a_fragment_into_an_accession_and_every_affected_row_is_reported(tmp_path):
    text = ("accession_number,patient_id,study_date,report_text\n"
            'A1,P1,2020-01-01,"Impression: BI-RADS 2.\n'                       # line 2: quote never closed
            'A2,P2,2020-01-02,"Findings:\nmass, left, density B, BI-RADS 4"\n'  # lines 3-4: its quotes now shifted
            "A3,P3,2020-01-03,BI-RADS 1.\n"                                    # line 5: intact
            'A4,P4,2020-01-04,"Right: BI-RADS 3,\nleft: BI-RADS 2."\n')          # lines 6-7: a legal multi-line cell
    path = tmp_path / "reports.csv"
    path.write_text(text)
    mine_labels(path, tmp_path / "out")
    accessions = {key[0] for key in labels_of(tmp_path / "out")}
    assert accessions == {"A3", "A4"}                   # no "mass", no half report under A1
    affected = {p["row"] for p in problems_of(tmp_path / "out") if p["reason"].startswith("malformed_csv_row")}
    assert {2, 3, 4} <= affected                        # A1, the swallowed A2, the fragment of A2's text
    assert labels_of(tmp_path / "out")[("A4", "R", "acr")]["label"] == "3"


# --- item 4: sizes and headers ---------------------------------------------------------------------
def test_a_report_of_several_megabytes_reads_and_is_cut_at_max_chars(tmp_path):
    big = "Impression: BI-RADS 4 left. " + "Unremarkable, stable. " * 150_000      # ~3.3 MB in one cell
    path = write_csv(tmp_path / "r.csv", HEADER, [("A1", "P1", "2020-01-01", big),
                                                  ("A2", "P2", "2020-01-01", "BI-RADS 1.")])
    summary = mine_labels(path, tmp_path / "out", chunk_rows=1)
    labels = labels_of(tmp_path / "out")
    assert labels[("A1", "L", "acr")]["label"] == "4" and labels[("A2", "L", "acr")]["label"] == "1"
    assert summary.report_outcomes.get("note:truncated") == 1


def test_a_duplicate_header_column_is_a_clear_error_naming_it(tmp_path):
    path = write_csv(tmp_path / "r.csv", ["accession_number", "report_text", "Report_Text "], [("A1", "x", "y")])
    with pytest.raises(ValueError, match="'Report_Text' appears more than once"):
        mine_labels(path, tmp_path / "out")


# --- item 5: atomic outputs --------------------------------------------------------------------------
@pytest.fixture()
def good_output(tmp_path):
    reports = write_csv(tmp_path / "r.csv", HEADER, [(f"A{i}", f"P{i}", "2020-01-01", "BI-RADS 2.") for i in range(50)])
    out = tmp_path / "out"
    mine_labels(reports, out, chunk_rows=10)
    return reports, out, {name: digest(out / name) for name in
                          ("breast_labels.parquet", "report_mentions.parquet", "label_problems.parquet")}


def test_a_run_that_fails_midway_leaves_the_previous_outputs_intact(good_output, monkeypatch):
    reports, out, before = good_output
    real, calls = pipeline.process_chunk, []

    def failing(chunk):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("worker died")
        return real(chunk)

    monkeypatch.setattr(pipeline, "process_chunk", failing)
    with pytest.raises(RuntimeError):
        mine_labels(reports, out, chunk_rows=10)
    assert {name: digest(out / name) for name in before} == before
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]


def test_a_labels_cli_run_that_exits_2_leaves_the_previous_outputs_intact(good_output, tmp_path):
    _, out, before = good_output
    bad = write_csv(tmp_path / "bad.csv", ["accession_number", "text"], [("A1", "BI-RADS 2")])
    result = CliRunner().invoke(app, ["labels", "--reports", str(bad), "--out", str(out), "--quiet"])
    assert result.exit_code == 2
    assert {name: digest(out / name) for name in before} == before


_SLOW_WRITER = """
import sys, time
from curation.parquet_io import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "w") as fh:
        for i in range(10_000):
            fh.write("row %d\\n" % i); fh.flush(); time.sleep(0.01)
"""


def test_a_writer_killed_midway_leaves_the_previous_file_intact(tmp_path):
    target = tmp_path / "table.csv"
    write_text_atomic(target, "the last good version\n")
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(target)], cwd=os.getcwd())
    try:
        deadline = time.monotonic() + 60
        while not any(p.name.endswith(".tmp") and p.stat().st_size > 0 for p in tmp_path.iterdir()):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert target.read_text() == "the last good version\n"


def test_atomic_path_removes_its_temporary_file_when_the_writer_raises(tmp_path):
    target = tmp_path / "x.json"
    target.write_text("{}")
    with pytest.raises(OSError), atomic_path(target) as tmp:
        tmp.write_text('{"half": ')
        raise OSError("disk full")
    assert target.read_text() == "{}" and os.listdir(tmp_path) == ["x.json"]
