import json

import pandas as pd

from curation.phi_audit import audit, harvest_phi
from tests.dicom_factory import PHI, make_mg


def _home(tmp_path):
    make_mg(tmp_path / "cohorts/hmi/dicom/a.dcm", sop_uid="1.2.3")
    (tmp_path / "catalog/hmi").mkdir(parents=True)
    return tmp_path


def test_harvest_finds_every_planted_identifier_including_name_parts(tmp_path):
    values = harvest_phi(_home(tmp_path) / "cohorts")
    assert values["MRN-99887766"] == "PatientID"
    assert values["Quixotica"] == "PatientName"          # a given name identifies on its own
    assert values["1951-03-17"] == "PatientBirthDate"    # reformatted dates are caught too
    assert "Hospital" not in values                      # institution words alone do not


def test_a_leak_inside_a_compressed_parquet_is_found_and_reported_masked(tmp_path):
    home = _home(tmp_path)
    pd.DataFrame({"x": ["fine", f"oops {PHI['AccessionNumber']}"]}).to_parquet(
        home / "catalog/hmi/catalog.parquet", compression="zstd")
    (home / "catalog/hmi/meta.json").write_text(json.dumps({"who": PHI["PatientName"]}))
    hits, scanned, _ = audit(home)
    assert scanned == 2
    assert {(h.file, h.kind) for h in hits} >= {("catalog/hmi/catalog.parquet", "AccessionNumber"),
                                                ("catalog/hmi/meta.json", "PatientName")}
    assert all(PHI["AccessionNumber"] not in h.masked for h in hits)


def test_clean_outputs_give_no_hit(tmp_path):
    home = _home(tmp_path)
    pd.DataFrame({"patient_pid": ["P-0123456789abcdef"]}).to_parquet(home / "catalog/hmi/catalog.parquet")
    assert audit(home)[0] == []


def test_digits_inside_a_longer_number_are_not_a_birth_date(tmp_path):
    home = _home(tmp_path)
    pd.DataFrame({"p": [0.195103170042], "n": ["id 119510317"]}).to_parquet(home / "catalog/hmi/p.parquet")
    assert audit(home)[0] == []
    pd.DataFrame({"dob": ["born 19510317"]}).to_parquet(home / "catalog/hmi/leak.parquet")
    assert [h.kind for h in audit(home)[0]] == ["PatientBirthDate"]


def test_png_text_chunks_are_searched(tmp_path):
    import struct
    import zlib

    home = _home(tmp_path)

    def chunk(kind, body):
        return struct.pack(">I4s", len(body), kind) + body + struct.pack(">I", zlib.crc32(kind + body))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"tEXt", b"Comment\x00" + PHI["PatientID"].encode()) + chunk(b"IEND", b"")
    (home / "catalog/hmi/img.png").write_bytes(png)
    assert [h.kind for h in audit(home)[0]] == ["PatientID"]


def test_multi_valued_ids_names_inside_sequences_and_report_csv_names_are_all_harvested(tmp_path):
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    path = make_mg(tmp_path / "cohorts/hmi/dicom/a.dcm", sop_uid="1.2.3")
    ds = pydicom.dcmread(path)
    ds.OtherPatientIDs = ["OLDMRN-111222", "OLDMRN-333444"]
    item = Dataset()
    item.PatientID = "SEQMRN-777888"
    ds.OtherPatientIDsSequence = Sequence([item])
    ds.OperatorsName = "Tech^Wilhelmina"
    ds.PatientAddress = "12 Hypothetical Lane"
    ds.save_as(path)
    (tmp_path / "cohorts/hmi/reports.csv").write_text(
        "accession_number,patient_id,patient_name,study_date,report_text\n"
        "ACC-1234567,MRN-7654321,Jonathan^Examplesson,2020-01-01,fine\n")
    values = harvest_phi(tmp_path / "cohorts")
    assert values["OLDMRN-111222"] == values["OLDMRN-333444"] == "OtherPatientIDs"   # each value on its own
    assert values["SEQMRN-777888"] == "PatientID"                                   # found inside a sequence
    assert values["Wilhelmina"] == "OperatorsName" and values["12 Hypothetical Lane"] == "PatientAddress"
    assert values["Examplesson"] == "PersonName" and values["MRN-7654321"] == "PatientID"


def test_the_private_file_key_lookup_is_not_searched_but_every_other_output_is(tmp_path):
    home = _home(tmp_path)
    (home / "private/file_keys").mkdir(parents=True)
    pd.DataFrame({"rel_path_text": [f"dicom/{PHI['PatientID']}/a.dcm"]}).to_parquet(home / "private/file_keys/hmi.parquet")
    assert audit(home)[0] == []
