"""Uncertainty policy, malignancy, CheXpert-style handling, structured labels, adjudication, view."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import yaml

from label_mining.adjudication import apply_adjudications
from label_mining.handling import apply_handling
from label_mining.label_record import LabelRecord, missing, typed_label
from label_mining.malignancy import PathologyRecord, add_months, breastbin_label
from label_mining.structured_labels import load_structured_labels, merge_structured
from label_mining.uncertainty_policy import DEFAULT_POLICY_PATH, combine, load_policy
from label_mining.view_labels import view_label

POLICY = load_policy()
EXAM = dt.date(2024, 3, 1)


def acr(label, u=0.0):
    return LabelRecord("acr", label, u, "report", "assessment.birads", f"BI-RADS {label}")


def write_policy(tmp_path, **changes):
    raw = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
    for dotted, value in changes.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


# --- policy -----------------------------------------------------------------------------------
def test_combination_is_noisy_or_and_stays_in_unit_interval():
    assert combine() == 0.0
    assert combine(0.5, 0.4) == pytest.approx(0.7)
    assert combine(1.0, 0.3) == 1.0
    assert combine(0.2) == pytest.approx(0.2)


def test_policy_version_names_file_version_and_content(tmp_path):
    assert POLICY.policy_version.startswith("default@1.1.0+")
    edited = load_policy(write_policy(tmp_path, **{"terms.hedge": 0.3}))
    assert edited.policy_version != POLICY.policy_version


@pytest.mark.parametrize("field,value,needle", [
    ("terms.hedge", 1.5, "hedge"),
    ("handling.acr", "ones", "handling.acr"),
    ("terms.spelling_mistakes", 0.1, "spelling_mistakes"),
])
def test_a_bad_policy_fails_fast_naming_the_field(tmp_path, field, value, needle):
    with pytest.raises(ValueError, match=needle):
        load_policy(write_policy(tmp_path, **{field: value}))


# --- malignancy -------------------------------------------------------------------------------
def test_biopsy_within_the_window_confirms_malignancy_with_u_zero():
    rec = breastbin_label(acr("4"), [PathologyRecord("L", EXAM + dt.timedelta(days=20), "malignant", "biopsy")],
                          EXAM, POLICY)
    assert (rec.label, rec.u, rec.source) == ("1", 0.0, "biopsy")


def test_surgery_outranks_an_earlier_biopsy():
    path = [PathologyRecord("L", EXAM + dt.timedelta(days=10), "malignant", "biopsy"),
            PathologyRecord("L", EXAM + dt.timedelta(days=40), "benign", "surgery")]
    rec = breastbin_label(acr("4"), path, EXAM, POLICY)
    assert (rec.label, rec.source) == ("0", "surgery")


def test_benign_biopsy_under_birads_5_is_a_discordance():
    rec = breastbin_label(acr("5"), [PathologyRecord("L", EXAM, "benign", "biopsy")], EXAM, POLICY)
    assert rec.label == "0" and rec.conflict and rec.u == pytest.approx(POLICY.malignancy.discordance_u)


def test_negative_follow_up_after_24_months_is_benign_but_12_months_is_not():
    late = [PathologyRecord("L", add_months(EXAM, 25), "benign", "follow_up")]
    early = [PathologyRecord("L", add_months(EXAM, 12), "benign", "follow_up")]
    assert breastbin_label(acr("3"), late, EXAM, POLICY).source == "follow_up"
    assert breastbin_label(acr("3"), early, EXAM, POLICY).label is None


def test_malignancy_derived_from_the_assessment_as_in_the_paper():
    derived_u = POLICY.malignancy.derived_u
    assert breastbin_label(acr("2"), [], EXAM, POLICY).label == "0"
    rec = breastbin_label(acr("5", u=0.2), [], EXAM, POLICY)
    assert rec.label == "1" and rec.source == "derived" and rec.u == pytest.approx(combine(derived_u, 0.2))
    assert breastbin_label(acr("3"), [], EXAM, POLICY).label is None
    assert breastbin_label(missing("acr", "no_assessment_statement"), [], EXAM, POLICY).label is None


def test_birads_6_is_malignant_and_confirmed():
    rec = breastbin_label(acr("6"), [], EXAM, POLICY)
    assert (rec.label, rec.u) == ("1", 0.0)


def test_pathology_before_the_exam_does_not_label_it():
    rec = breastbin_label(acr("2"), [PathologyRecord("L", EXAM - dt.timedelta(days=400), "malignant", "biopsy")],
                          EXAM, POLICY)
    assert rec.source == "derived" and rec.label == "0"


# --- CheXpert-style handling ------------------------------------------------------------------
def test_u_ignore_drops_uncertain_labels_and_u_ones_makes_them_certain(tmp_path):
    uncertain = LabelRecord("breastbin", "0", 0.5, "derived", "malignancy.derived_from_acr")
    ignore = load_policy(write_policy(tmp_path, **{"handling.breastbin": "ignore"}))
    ones = load_policy(write_policy(tmp_path, **{"handling.breastbin": "ones"}))
    assert apply_handling(uncertain, ignore).label is None
    assert apply_handling(uncertain, ignore).missing_reason == "uncertain_label_ignored_by_policy"
    assert (apply_handling(uncertain, ones).label, apply_handling(uncertain, ones).u) == ("1", 0.0)
    assert apply_handling(uncertain, POLICY) is uncertain


# --- structured labels ------------------------------------------------------------------------
def test_structured_table_rows_become_labels_and_bad_cells_are_reported(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("accession_number,laterality,birads,density,malignancy,u\n"
                    "A1,L,4b,2,malignant,\nA1,R,1,B,benign,0.2\nA2,,7,C,,\n,L,2,,,\n")
    table = load_structured_labels(path, POLICY)
    assert table.breast[("A1", "L", "acr")].detail == "4B"
    assert table.breast[("A1", "L", "density")].label == "B"
    assert table.breast[("A1", "R", "breastbin")].u == pytest.approx(0.2)
    assert table.breast[("A2", "R", "density")].label == "C"           # no side: both breasts
    reasons = sorted(r for _, r in table.problems)
    assert reasons == ["birads_not_a_valid_acr_label", "missing_accession_number"]


def test_table_wins_over_the_report_and_a_disagreement_is_flagged():
    table = LabelRecord("acr", "4", 0.0, "structured", "structured.birads")
    merged = merge_structured(acr("2"), table, POLICY)
    assert merged.label == "4" and merged.conflict
    assert merged.u == pytest.approx(POLICY.terms.source_disagreement)
    assert merge_structured(acr("4"), table, POLICY) is table


# --- adjudication -----------------------------------------------------------------------------
def test_latest_non_skip_decision_wins_and_unknown_makes_the_label_missing():
    labels = pd.DataFrame({"breast_key": ["A:L", "A:L", "A:R"], "task": ["acr", "density", "acr"],
                           "label": ["2", "B", "1"], "u": [0.3, 0.0, 0.0], "weight": [0.7, 1.0, 1.0],
                           "source": ["report"] * 3, "rule_id": ["r"] * 3, "evidence": [""] * 3,
                           "conflict": [True, False, False], "missing_reason": [None] * 3})
    decisions = pd.DataFrame({
        "decision_id": ["d1", "d2", "d3", "d4"], "target_level": ["breast"] * 4,
        "target_key": ["A:L", "A:L", "A:L", "A:R"], "task": ["acr", "acr", "acr", "acr"],
        "decision": ["correct", "confirm", "skip", "unknown"], "label": ["5", "4", None, None],
        "decided_at": ["2026-01-01T10:00:00Z", "2026-01-02T10:00:00Z", "2026-01-03T10:00:00Z",
                       "2026-01-01T10:00:00Z"]})
    out, counts = apply_adjudications(labels, decisions, "breast", "breast_key")
    first = out.iloc[0]
    assert (first["label"], first["u"], first["weight"], first["source"]) == ("4", 0.0, 1.0, "review")
    assert pd.isna(out.iloc[2]["label"]) and out.iloc[2]["weight"] == 0.0 and out.iloc[2]["source"] == "review"
    assert out.iloc[1]["label"] == "B"
    assert counts == {"applied": 1, "unknown": 1, "invalid": 0, "unmatched": 0}


# --- view -------------------------------------------------------------------------------------
def test_view_from_code_sequence_is_certain_and_conflicting_tags_raise_u():
    assert view_label("CC", "ViewCodeSequence", False, POLICY).u == 0.0
    conflicted = view_label("MLO", "ViewCodeSequence", True, POLICY)
    assert conflicted.conflict and conflicted.u == pytest.approx(POLICY.view.conflict)
    described = view_label("MLO", "SeriesDescription", False, POLICY)
    assert described.u > view_label("MLO", "ViewPosition", False, POLICY).u


def test_a_view_conflict_shows_what_each_tag_said():
    rec = view_label("CC", "ViewPosition", True, POLICY, votes="ViewPosition=CC; SeriesDescription=MLO")
    assert rec.evidence == "ViewPosition: CC (tags disagree: ViewPosition=CC; SeriesDescription=MLO)"


def test_lateral_view_folds_into_mlo_and_unsupported_views_are_missing():
    ml = view_label("ML", "ViewPosition", False, POLICY)
    assert ml.label == "MLO" and ml.detail == "ML"
    assert view_label("FB", "ViewPosition", False, POLICY).label is None
    assert view_label(None, None, None, POLICY).missing_reason == "no_view_in_dicom_tags"


def test_typed_label_gives_the_class_value_of_a_stored_string():
    assert typed_label("acr", "4") == 4 and typed_label("breastbin", "0") == 0
    assert typed_label("density", "B") == "B" and typed_label("view", None) is None
    assert typed_label("acr", float("nan")) is None
    with pytest.raises(ValueError, match="acr"):
        typed_label("acr", "7")
