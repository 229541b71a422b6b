from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from curation.dicom_tags import resolve_laterality, resolve_view, votes_text


def _ds(**tags):
    ds = Dataset()
    for k, v in tags.items():
        setattr(ds, k, v)
    return ds


def _code(value, meaning=""):
    item = Dataset()
    item.CodeValue = value
    item.CodeMeaning = meaning
    return Sequence([item])


def test_image_laterality_wins_over_description_and_flags_the_conflict():
    res = resolve_laterality(_ds(ImageLaterality="L", SeriesDescription="R CC"))
    assert (res.value, res.source, res.conflict) == ("L", "ImageLaterality", True)


def test_laterality_falls_back_to_series_laterality_then_description():
    assert resolve_laterality(_ds(Laterality="R")).value == "R"
    res = resolve_laterality(_ds(SeriesDescription="LMLO tomo off"))
    assert (res.value, res.source, res.conflict) == ("L", "SeriesDescription", False)


def test_both_or_unpaired_laterality_is_not_a_breast_side():
    assert resolve_laterality(_ds(ImageLaterality="B")).value is None
    assert resolve_laterality(_ds()).value is None


def test_view_code_sequence_beats_view_position():
    res = resolve_view(_ds(ViewCodeSequence=_code("399368009"), ViewPosition="CC"))
    assert (res.value, res.source, res.conflict) == ("MLO", "ViewCodeSequence", True)


def test_legacy_snomed_code_and_code_meaning_are_understood():
    assert resolve_view(_ds(ViewCodeSequence=_code("R-10242"))).value == "CC"
    assert resolve_view(_ds(ViewCodeSequence=_code("99X", "medio-lateral oblique"))).value == "MLO"


def test_view_from_description_when_tags_are_missing():
    res = resolve_view(_ds(ProtocolName="R-ML"))
    assert (res.value, res.source) == ("ML", "ProtocolName")


def test_words_that_merely_contain_view_letters_are_not_views():
    assert resolve_view(_ds(SeriesDescription="CCD detector calibration")).value is None


def test_patient_orientation_is_evidence_of_the_side_and_exposes_a_wrong_image_laterality():
    assert resolve_laterality(_ds(PatientOrientation=["A", "R"])).value == "L"
    res = resolve_laterality(_ds(ImageLaterality="L", PatientOrientation=["P", "F"]))
    assert (res.value, res.conflict) == ("L", True)
    assert ("PatientOrientation", "R") in res.seen


def test_the_votes_name_every_tag_that_spoke_so_a_reviewer_sees_both_sides_of_a_conflict():
    lat = resolve_laterality(_ds(ImageLaterality="L", SeriesDescription="R CC"))
    assert votes_text(lat) == "ImageLaterality=L; SeriesDescription=R"
    view = resolve_view(_ds(ViewPosition="CC", SeriesDescription="Mammo L MLO (DOE^JANE)"))
    assert view.conflict and votes_text(view) == "ViewPosition=CC; SeriesDescription=MLO"  # codes, never free text
    assert votes_text(resolve_view(_ds())) is None
