"""Every flagged label says why in ``conflict_kind`` (one vocabulary, curation.tasks.ConflictKind);
unflagged labels carry none. The review queue reads the column instead of parsing rule ids."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from curation.tasks import ConflictKind
from label_mining.adjudication import apply_adjudications
from label_mining.aggregate import merge_readers, report_labels
from label_mining.api import mine_report
from label_mining.image_labels import build_image_labels
from label_mining.label_record import LabelRecord
from label_mining.malignancy import (ACR_TO_MALIGNANCY, PathologyRecord, breastbin_label, malignancy_from_acr)
from label_mining.report_parser import ReportParser
from label_mining.structured_labels import merge_structured
from label_mining.uncertainty_policy import load_policy
from label_mining.view_labels import view_label

POLICY = load_policy()
PARSER = ReportParser(POLICY.parser)
EXAM = dt.date(2020, 1, 10)


def acr(label: str) -> LabelRecord:
    return LabelRecord("acr", label, 0.0, "report", "assessment.birads", f"BI-RADS {label}")


def test_a_label_without_conflict_never_has_a_kind_and_a_flagged_one_always_has_one():
    assert LabelRecord("acr", "2", 0.0, "report", "r", conflict_kind=ConflictKind.TWO_READERS).conflict_kind is None
    assert LabelRecord("acr", "2", 0.0, "report", "r", conflict=True).conflict_kind == ConflictKind.OTHER.value
    with pytest.raises(ValueError):
        LabelRecord("acr", "2", 0.0, "report", "r", conflict=True, conflict_kind="report_vs_vibes")


def test_one_report_stating_two_categories_is_a_conflicting_statements_conflict():
    labels, _ = mine_report("Negative mammogram, BI-RADS 1. Suspicious mass, BI-RADS 4.", parser=PARSER, policy=POLICY)
    assert labels[("L", "acr")].conflict_kind == ConflictKind.CONFLICTING_STATEMENTS.value
    labels, _ = mine_report("Density B. Density D.", parser=PARSER, policy=POLICY)
    assert labels[("L", "density")].conflict_kind == ConflictKind.CONFLICTING_STATEMENTS.value


def test_two_readers_disagreeing_is_a_two_readers_conflict():
    first = report_labels(PARSER.parse("BI-RADS 2."), POLICY, "senior")
    second = report_labels(PARSER.parse("BI-RADS 4."), POLICY, "senior")
    merged = merge_readers([first, second], POLICY)
    assert merged[("L", "acr")].conflict_kind == ConflictKind.TWO_READERS.value


def test_a_label_table_disagreeing_with_the_report_is_a_table_vs_report_conflict():
    table = LabelRecord("acr", "4", 0.0, "structured", "structured.birads", "labels.csv row 2: birads=4")
    assert merge_structured(acr("2"), table, POLICY).conflict_kind == ConflictKind.TABLE_VS_REPORT.value
    assert merge_structured(acr("4"), table, POLICY).conflict_kind is None


def test_benign_tissue_under_birads_5_is_a_report_vs_pathology_conflict():
    rec = breastbin_label(acr("5"), [PathologyRecord("L", EXAM, "benign", "biopsy")], EXAM, POLICY)
    assert rec.conflict and rec.conflict_kind == ConflictKind.REPORT_VS_PATHOLOGY.value


def test_disagreeing_view_tags_are_a_dicom_tag_conflict_and_a_review_decision_clears_the_kind():
    assert view_label("CC", "ViewPosition", True, POLICY).conflict_kind == ConflictKind.DICOM_TAG_CONFLICT.value
    catalog = pd.DataFrame([{"image_key": "i1", "breast_key": "a:L", "accession_key": "a", "patient_pid": "p",
                             "laterality": "L", "view": "CC", "view_source": "ViewPosition", "view_conflict": False,
                             "laterality_conflict": True}])
    breast = pd.DataFrame([{"breast_key": "a:L", "task": t, "label": v, "u": 0.0, "weight": 1.0, "source": "report",
                            "rule_id": "r", "evidence": "", "conflict": False, "conflict_kind": None,
                            "policy_version": "x", "label_detail": None, "missing_reason": None}
                           for t, v in (("acr", "2"), ("density", "B"), ("breastbin", "0"))])
    frame, _ = build_image_labels(catalog, breast, POLICY)
    acr_row = frame[(frame["task"] == "acr")].iloc[0]
    assert acr_row["conflict"] and acr_row["conflict_kind"] == ConflictKind.DICOM_TAG_CONFLICT.value
    decisions = pd.DataFrame([{"decision_id": 1, "target_level": "image", "target_key": "i1", "task": "acr",
                               "decision": "confirm", "label": "2", "decided_at": "2024-01-01T00:00:00Z"}])
    reviewed, _ = apply_adjudications(frame, decisions, "image", "image_key")
    row = reviewed[reviewed["task"] == "acr"].iloc[0]
    assert not row["conflict"] and row["conflict_kind"] is None


def test_an_image_whose_tags_disagree_carries_both_tag_values_into_its_labels_evidence():
    catalog = pd.DataFrame([{"image_key": "i1", "breast_key": "a:L", "accession_key": "a", "patient_pid": "p",
                             "laterality": "L", "view": "CC", "view_source": "ViewPosition", "view_conflict": True,
                             "view_votes": "ViewPosition=CC; SeriesDescription=MLO", "laterality_conflict": True,
                             "laterality_votes": "ImageLaterality=L; SeriesDescription=R"}])
    breast = pd.DataFrame([{"breast_key": "a:L", "task": "acr", "label": "2", "u": 0.0, "weight": 1.0,
                            "source": "report", "rule_id": "r", "evidence": "BI-RADS 2", "conflict": False,
                            "conflict_kind": None, "policy_version": "x", "label_detail": None, "missing_reason": None}])
    frame, _ = build_image_labels(catalog, breast, POLICY)
    by_task = frame.set_index("task")["evidence"]
    assert by_task["view"].endswith("(tags disagree: ViewPosition=CC; SeriesDescription=MLO)")
    assert by_task["acr"] == "BI-RADS 2 [laterality tags disagree: ImageLaterality=L; SeriesDescription=R]"


def test_the_acr_to_malignancy_mapping_is_the_one_breastbin_uses():
    for category in range(1, 7):
        rec = breastbin_label(acr(str(category)), [], EXAM, POLICY)
        assert (None if rec.label is None else int(rec.label)) == malignancy_from_acr(category)
        assert malignancy_from_acr(str(category)) == ACR_TO_MALIGNANCY.get(category)
    assert malignancy_from_acr(None) is None and malignancy_from_acr(float("nan")) is None
