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
