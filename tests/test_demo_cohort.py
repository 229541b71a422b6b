"""The demo cohort generator writes valid, deterministic cohorts whose truth matches the files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pydicom
import pytest
from typer.testing import CliRunner

from curation.demo_cohort import generate_cohort
from curation.demo_cohort.dicom_writer import MG_FOR_PRESENTATION, MG_FOR_PROCESSING

HEIGHT = 128


def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def hmi(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("hmi")
    return out, generate_cohort("hmi", 24, 7, out, height=HEIGHT)


@pytest.fixture(scope="module")
def truth(hmi) -> pd.DataFrame:
    return pd.read_parquet(hmi[0] / "truth.parquet")


def test_same_arguments_give_byte_identical_files(tmp_path):
    a = generate_cohort("inb", 5, 11, tmp_path / "a", height=96)
    b = generate_cohort("inb", 5, 11, tmp_path / "b", height=96)
    ha, hb = _hashes(tmp_path / "a"), _hashes(tmp_path / "b")
    assert ha == hb and len(ha) == a.dicom_files + 4
    syntaxes = set(pd.read_parquet(tmp_path / "a" / "truth.parquet").transfer_syntax.dropna())
    assert {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.5"} <= syntaxes  # RLE included
    c = generate_cohort("inb", 5, 12, tmp_path / "c", height=96)
    assert _hashes(tmp_path / "c") != ha and c.images > 0 and b.images > 0


def test_the_same_cohort_at_another_height_keeps_its_patients_headers_and_labels(tmp_path):
    generate_cohort("vtb", 4, 2, tmp_path / "small", height=64)
    generate_cohort("vtb", 4, 2, tmp_path / "large", height=160)
    small = pd.read_parquet(tmp_path / "small" / "truth.parquet")
    large = pd.read_parquet(tmp_path / "large" / "truth.parquet")
    same = ["level", "file", "sop_instance_uid", "laterality", "view", "malignant", "acr", "density",
            "planted_defect", "photometric_interpretation", "transfer_syntax", "report_acr", "report_density"]
    pd.testing.assert_frame_equal(small[same], large[same])
    assert (tmp_path / "small" / "reports.csv").read_bytes() == (tmp_path / "large" / "reports.csv").read_bytes()


def test_a_fresh_process_with_another_hash_seed_writes_the_same_bytes(tmp_path):
    import os
    import subprocess
    import sys

    generate_cohort("vtb", 3, 5, tmp_path / "here", height=80)
    code = ("import sys; from pathlib import Path; from curation.demo_cohort import generate_cohort; "
            "generate_cohort('vtb', 3, 5, Path(sys.argv[1]), height=80)")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "there")], check=True, env=env,
                   cwd=Path(__file__).resolve().parents[1])
    assert _hashes(tmp_path / "here") == _hashes(tmp_path / "there")


def test_every_clean_file_is_a_readable_mammogram(hmi, truth):
    root, _ = hmi
    clean = truth[(truth.level == "image") & truth.planted_defect.isna()]
    assert len(clean) > 50
    for row in clean.itertuples():
        ds = pydicom.dcmread(root / row.file)
        assert ds.Modality == "MG"
        assert ds.SOPClassUID in (MG_FOR_PRESENTATION, MG_FOR_PROCESSING)
        assert ds.SOPInstanceUID == row.sop_instance_uid
        arr = ds.pixel_array
        assert arr.shape == (row.rows, row.cols) == (HEIGHT, ds.Columns)
        assert 12 <= ds.BitsStored <= 16 and int(arr.max()) < 2 ** ds.BitsStored
        assert ds.PhotometricInterpretation in ("MONOCHROME1", "MONOCHROME2")
        for tag in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "InstitutionName",
                    "ReferringPhysicianName", "WindowCenter", "WindowWidth", "Manufacturer"):
            assert tag in ds, tag
        assert ds.AccessionNumber == row.accession_number and ds.PatientID == row.patient_id


def test_cli_writes_a_cohort_and_rejects_bad_arguments(tmp_path):
    from pipelines.cli import app

    runner = CliRunner()
    out = tmp_path / "vtb"
    result = runner.invoke(app, ["demo-data", "--cohort", "vtb", "--patients", "3", "--seed", "1", "--out", str(out),
                                 "--height", "96"])
    assert result.exit_code == 0, result.output
    assert (out / "truth.parquet").is_file() and (out / "reports.csv").is_file()
    assert any((out / "dicom").rglob("*.dcm"))
    bad = runner.invoke(app, ["demo-data", "--cohort", "xyz", "--patients", "3", "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0


def test_bad_arguments_fail_fast_naming_the_field(tmp_path):
    for kwargs, field in (({"cohort": "xyz"}, "cohort"), ({"patients": 0}, "patients"), ({"seed": -1}, "seed"),
                          ({"height": 10}, "height")):
        args = {"cohort": "hmi", "patients": 1, "seed": 0, "out": tmp_path / "bad", "height": 64, **kwargs}
        with pytest.raises(ValueError, match=field):
            generate_cohort(**args)


def test_a_folder_the_generator_did_not_write_is_never_overwritten(tmp_path):
    foreign = tmp_path / "real_site_export"
    (foreign / "dicom").mkdir(parents=True)
    (foreign / "dicom" / "precious.dcm").write_bytes(b"not ours")
    with pytest.raises(FileExistsError, match="not written by the demo generator"):
        generate_cohort("hmi", 1, 0, foreign, height=64)
    assert (foreign / "dicom" / "precious.dcm").read_bytes() == b"not ours"
    # a folder it wrote itself is regenerated in place, leaving no stale files behind
    ours = tmp_path / "ours"
    generate_cohort("hmi", 3, 0, ours, height=64)
    small = generate_cohort("hmi", 1, 0, ours, height=64)
    assert len(list((ours / "dicom").rglob("*.dcm"))) == small.dicom_files
