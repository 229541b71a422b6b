"""Report text for the item page: joined by pseudonymised accession, evidence highlighted, escaped."""

from curation.home import MammoHome
from curation.pseudonym import pseudonymise
from review_app.reports import ReportIndex, Segment, highlight

KEY = b"report-test-key"


def test_reports_are_found_by_pseudonymised_accession_and_keep_no_identifier(tmp_path):
    home = MammoHome(tmp_path).ensure()
    (home.batch_root("hmi")).mkdir(parents=True)
    (home.batch_root("hmi") / "reports.csv").write_text(
        "accession_number,patient_id,study_date,report_text,reader_id,reader_level\n"
        "ACC9,PAT9,2021-02-03,\"Two readers, first.\",R1,senior\n"
        "ACC9,PAT9,2021-02-03,\"Second read.\",R2,junior\n")
    index = ReportIndex(home, KEY)
    reports = index.reports("hmi", pseudonymise("ACC9", "accession", KEY))
    assert [(r.text, r.reader_level) for r in reports] == [("Two readers, first.", "senior"), ("Second read.", "junior")]
    assert "ACC9" not in repr(reports) and "PAT9" not in repr(reports) and "R1" not in repr(reports)
    assert index.reports("hmi", "A-unknown") == []


def test_missing_reports_file_is_explained(tmp_path):
    index = ReportIndex(MammoHome(tmp_path).ensure(), KEY)
    assert index.reports("vtb", "A-1") == []
    assert index.problem("vtb") == "no reports.csv in the vtb cohort folder"


def test_mined_span_is_highlighted_when_it_matches_the_evidence():
    text = "Density B. Mass probably benign."
    assert highlight(text, "probably benign", 16, 31) == [Segment("Density B. Mass ", False),
                                                          Segment("probably benign", True), Segment(".", False)]


def test_span_outside_the_text_falls_back_to_searching_the_evidence_across_whitespace_and_case():
    text = "Probably   BENIGN calcifications."
    assert highlight(text, "probably benign", 120, 130)[0] == Segment("Probably   BENIGN", True)


def test_evidence_not_in_the_text_highlights_nothing():
    assert highlight("No findings.", "spiculated mass") == [Segment("No findings.", False)]


def test_other_statements_on_the_question_are_marked_apart_from_the_evidence():
    text = "Reader 1: BI-RADS 4. Reader 2: BI-RADS 2."
    segments = highlight(text, None, 10, 19, related=((31, 40), (12, 15)))   # (12, 15) overlaps: dropped
    assert [(s.text, s.evidence, s.related) for s in segments] == [
        ("Reader 1: ", False, False), ("BI-RADS 4", True, False), (". Reader 2: ", False, False),
        ("BI-RADS 2", False, True), (".", False, False)]


def test_identifiers_written_into_a_report_are_masked_without_moving_any_offset():
    from review_app.redact import MASK, redact

    text = ("Patient: Doe, Jane  MRN: 00123456  DOB: 03/04/1961  Acc. no. ACC1001. "
            "Left breast: spiculated mass, BI-RADS 5. Reader R7.")
    shown = redact(text, ["ACC1001", "PAT01", "R7x", "Doe^Jane"])
    assert len(shown) == len(text)
    for secret in ("Doe", "Jane", "00123456", "03/04/1961", "ACC1001"):
        assert secret not in shown
    start = text.index("BI-RADS 5")
    assert shown[start:start + 9] == "BI-RADS 5" and MASK in shown


def test_the_app_shows_report_text_with_the_patients_identifiers_masked(tmp_path):
    import pandas as pd

    from review_app.reports import ReportIndex
    from review_app.sample import BATCH, build_sample_home
    from curation.pseudonym import pseudonymise

    home = build_sample_home(tmp_path / "home", b"k")
    csv = home.batch_root(BATCH) / "reports.csv"
    frame = pd.read_csv(csv, dtype=str)
    frame["patient_name"] = "Smith^Anna"
    frame.loc[0, "report_text"] = "Patient Anna Smith (PAT01), MRN 99887766. " + frame.loc[0, "report_text"]
    frame.to_csv(csv, index=False)
    report = ReportIndex(home, b"k").reports(BATCH, pseudonymise("ACC1001", "accession", b"k"))[0]
    for secret in ("Anna", "Smith", "PAT01", "99887766"):
        assert secret not in report.text
    assert "BI-RADS 5" in report.text
