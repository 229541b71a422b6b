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
