"""Non-screening views are recognised from the tags that say so, and the policy decides their fate."""

import pytest
from hypothesis import given, settings, strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from curation.view_types import (KINDS, SCREENING, ViewTypePolicy, classify_view_type, load_view_policy)


def _ds(**tags) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"
    ds.ImageType = ["ORIGINAL", "PRIMARY", ""]
    for k, v in tags.items():
        setattr(ds, k, v)
    return ds


def _with_modifier(meaning: str) -> Dataset:
    mod = Dataset()
    mod.CodeValue, mod.CodingSchemeDesignator, mod.CodeMeaning = "X", "SCT", meaning
    view = Dataset()
    view.CodeValue, view.CodeMeaning = "399162004", "cranio-caudal"
    view.ViewModifierCodeSequence = Sequence([mod])
    return _ds(ViewCodeSequence=Sequence([view]))


def test_a_standard_cc_view_is_a_screening_view_and_kept():
    vt = classify_view_type(_ds(SeriesDescription="L CC", ViewPosition="CC"))
    assert (vt.kind, vt.action, vt.evidence) == (SCREENING, "keep", ())


@pytest.mark.parametrize("meaning, kind", [
    ("Spot Compression", "spot_compression"), ("Magnification", "magnification"),
    ("Implant Displaced", "implant_displaced"), ("Stereotactic", "stereotactic")])
def test_the_view_modifier_code_sequence_names_the_kind(meaning, kind):
    vt = classify_view_type(_with_modifier(meaning))
    assert vt.kind == kind
    assert "ViewModifierCodeSequence" in vt.reason


@pytest.mark.parametrize("tags, kind", [
    ({"ImageType": ["DERIVED", "PRIMARY", "TOMOSYNTHESIS", "GENERATED_2D"]}, "synthesised_2d"),
    ({"SeriesDescription": "L CC C-View"}, "synthesised_2d"),
    ({"ProtocolName": "R MLO ID"}, "implant_displaced"),
    ({"SeriesDescription": "LCC IMPLANT DISPLACED"}, "implant_displaced"),
    ({"SeriesDescription": "SPECIMEN"}, "specimen"),
    ({"SeriesDescription": "R CC SPOT MAG"}, "spot_compression"),
    ({"SeriesDescription": "L MCC"}, "magnification"),
    ({"SOPClassUID": "1.2.840.10008.5.1.4.1.1.1.2.1"}, "for_processing"),
    ({"PresentationIntentType": "FOR PROCESSING"}, "for_processing"),
])
def test_image_type_descriptions_and_sop_class_name_the_kind(tags, kind):
    assert classify_view_type(_ds(**tags)).kind == kind


def test_a_biopsy_spot_view_is_called_stereotactic_and_the_reason_says_what_it_is():
    ds = _with_modifier("Spot Compression")
    ds.ProtocolName = "STEREO BIOPSY L"
    vt = classify_view_type(ds)
    assert vt.kind == "stereotactic" and vt.action == "quarantine"
    assert vt.reason.startswith("stereotactic / biopsy guidance view:")
    assert "spot_compression" in vt.reason  # every source that spoke is in the evidence


def test_the_default_policy_quarantines_spot_and_keeps_synthesised_2d_with_the_kind():
    assert classify_view_type(_with_modifier("Spot Compression")).action == "quarantine"
    vt = classify_view_type(_ds(SeriesDescription="R MLO V-Preview"))
    assert (vt.kind, vt.action) == ("synthesised_2d", "keep")


def test_a_site_policy_can_keep_spot_views(tmp_path):
    policy = ViewTypePolicy(policy_version="site", actions={"spot_compression": "keep"})
    assert classify_view_type(_with_modifier("Spot Compression"), policy).action == "keep"


def test_the_shipped_policy_names_an_action_for_every_kind():
    assert set(load_view_policy().actions) == set(KINDS)


def test_a_bad_policy_action_fails_naming_the_field(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("policy_version: x\nactions:\n  spot_compression: delete\n")
    with pytest.raises(ValueError, match="spot_compression"):
        load_view_policy(bad)


@pytest.mark.parametrize("text", ["L CC", "RMLO", "R ML", "LEFT MLO", "CCID_NUMBER 3", "MAMMO SCREENING",
                                  "L CC PROCESSED", "SPECTRA"])
def test_ordinary_screening_descriptions_are_not_mistaken_for_special_views(text):
    assert classify_view_type(_ds(SeriesDescription=text)).kind == SCREENING


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_any_description_text_gives_a_known_kind_and_never_raises(text):
    vt = classify_view_type(_ds(SeriesDescription=text.replace("\\", "/")))
    assert vt.kind in (SCREENING, *KINDS)
    assert (vt.kind == SCREENING) == (vt.evidence == ())
