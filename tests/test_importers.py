"""Each public-dataset importer, on a tiny fixture written here from the dataset's documented layout
(never a file of the dataset), gives a cohort folder that ingest catalogues without quarantine,
with the dataset's laterality/view, pseudonymous ids and labels; everything skipped is reported."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pydicom
import pytest

from curation.catalog import build_catalog
from curation.importers import FORMATS, importers
from curation.importers.common import ImportError_
from curation.importers.mini_mias import parse_info
from curation.preprocess.phantom import phantom_dataset, phantom_pixels

KEY = b"test-key"


def dicom(path: Path, side: str, seed: int, *, header_side: bool = True, **tags) -> None:
    px, _ = phantom_pixels(96, 80, side, seed=seed)
    ds = phantom_dataset(px, laterality=side if header_side else None, window=(2048, 4096))
    ds.PatientID, ds.PatientName = "SECRET-ID-123", "Doe^Jane"
    for k, v in tags.items():
        setattr(ds, k, v)
    path.parent.mkdir(parents=True, exist_ok=True)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def labels(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "labels.csv", dtype=str, keep_default_na=False)


def catalogue(out: Path):
    res = build_catalog(out, "x", KEY)
    assert res.accounted
    return res


def assert_no_source_names(out: Path, *names: str) -> None:
    for p in (out / "dicom").rglob("*"):
        assert not any(n in p.as_posix() for n in names), p
    for p in (out / "dicom").rglob("*.dcm"):
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        assert "SECRET" not in str(ds.get("PatientID")) and not str(ds.get("PatientName", ""))


# --- mini-MIAS --------------------------------------------------------------------------------------
def mias_fixture(src: Path) -> None:
    src.mkdir(parents=True)
    for i, side in ((1, "L"), (2, "R"), (3, "L")):
        px, _ = phantom_pixels(128, 128, side, seed=i, bits_stored=8, n_labels=0)
        cv2.imwrite(str(src / f"mdb{i:03d}.pgm"), px.astype(np.uint8))
    (src / "Info.txt").write_text("mdb001 G CIRC B 535 425 197\nmdb002 F SPIC M 480 500 30\n"
                                  "mdb002 F CALC B 400 400 10\nmdb004 D NORM\nmdb005 X BAD LINE\n")


def test_mini_mias_films_become_mlo_dicoms_with_pixel_laterality_and_malignancy(tmp_path):
    mias_fixture(tmp_path / "src")
    s = importers()["mini-mias"](tmp_path / "src", tmp_path / "out")
    assert s["imported_images"] == 2
    reasons = {i["reason"] for i in s["skipped_items"]}
    assert "no Info.txt row" in reasons and "listed in Info.txt, no image" in reasons
    assert any(r.startswith("unparseable") for r in reasons)
    res = catalogue(tmp_path / "out")
    assert len(res.quarantine) == 0
    assert sorted(res.catalog["laterality"]) == ["L", "R"] and set(res.catalog["view"]) == {"MLO"}
    lab = labels(tmp_path / "out").set_index("laterality")
    assert lab.loc["R", "malignancy"] == "1" and lab.loc["L", "malignancy"] == "0"
    assert lab["density"].eq("").all()  # F/G/D is not ACR density: never mapped
    assert_no_source_names(tmp_path / "out", "mdb")


def test_mias_info_lines_without_severity_or_of_another_shape_are_reported_not_guessed():
    rows, bad = parse_info("REFNUM BG CLASS SEVERITY X Y RADIUS\nmdb001 G CIRC\nmdb002 F NORM\nmdb003 Q NORM\n")
    assert list(rows) == ["mdb002"] and [n for n, _ in bad] == [2, 4]


# --- CBIS-DDSM --------------------------------------------------------------------------------------
def cbis_fixture(src: Path) -> None:
    for name, side, seed in (("Mass-Training_P_00001_LEFT_CC", "L", 1), ("Mass-Training_P_00001_LEFT_MLO", "L", 2),
                             ("Calc-Test_P_00002_RIGHT_CC", "R", 3)):
        dicom(src / "CBIS-DDSM" / name / "1.3.6.1.4.1.9590.100.1.2.1" / "1.3.6.1.4.1.9590.100.1.2.2" / "1-1.dcm",
              side, seed, header_side=False, SeriesDescription="full mammogram images")
        dicom(src / "CBIS-DDSM" / f"{name}_1" / "a" / "b" / "1-1.dcm", side, seed + 10, header_side=False,
              SeriesDescription="ROI mask images")
    base = {"abnormality id": "1", "abnormality type": "mass", "subtlety": "3",
            "cropped image file path": "", "ROI mask file path": ""}
    write_csv(src / "mass_case_description_train_set.csv", [
        {**base, "patient_id": "P_00001", "breast_density": "3", "left or right breast": "LEFT", "image view": "CC",
         "assessment": "4", "pathology": "MALIGNANT", "image file path": "Mass-Training_P_00001_LEFT_CC/1/2/000000.dcm"},
        {**base, "patient_id": "P_00001", "breast_density": "3", "left or right breast": "LEFT", "image view": "MLO",
         "assessment": "3", "pathology": "BENIGN", "image file path": "Mass-Training_P_00001_LEFT_MLO/1/2/000000.dcm"},
        {**base, "patient_id": "P_00009", "breast_density": "2", "left or right breast": "LEFT", "image view": "CC",
         "assessment": "2", "pathology": "BENIGN", "image file path": "Mass-Training_P_00009_LEFT_CC/1/2/000000.dcm"}])
    write_csv(src / "calc_case_description_test_set.csv", [
        {**base, "patient_id": "P_00002", "breast density": "1", "left or right breast": "RIGHT", "image view": "CC",
         "assessment": "0", "pathology": "BENIGN_WITHOUT_CALLBACK",
         "image file path": "Calc-Test_P_00002_RIGHT_CC/1/2/000000.dcm"}])


def test_cbis_ddsm_full_mammograms_get_the_tables_side_view_and_breast_labels(tmp_path):
    cbis_fixture(tmp_path / "src")
    s = importers()["cbis-ddsm"](tmp_path / "src", tmp_path / "out")
    assert s["imported_images"] == 3  # ROI mask folders are not mammograms
    assert {i["reason"] for i in s["skipped_items"]} == {"described in the CSVs, no DICOM found"}
    res = catalogue(tmp_path / "out")
    assert len(res.quarantine) == 0
    assert sorted(zip(res.catalog["laterality"], res.catalog["view"])) == [("L", "CC"), ("L", "MLO"), ("R", "CC")]
    lab = labels(tmp_path / "out").set_index("laterality")
    assert lab.loc["L", ["birads", "density", "malignancy"]].tolist() == ["4", "C", "1"]
    assert lab.loc["R", ["birads", "density", "malignancy"]].tolist() == ["0", "A", "0"]
    assert_no_source_names(tmp_path / "out", "P_0000", "Mass-", "Calc-")


def test_a_birads_0_in_labels_csv_is_reported_as_incomplete_and_left_missing(tmp_path):
    from label_mining.structured_labels import load_structured_labels
    from label_mining.uncertainty_policy import load_policy
    cbis_fixture(tmp_path / "src")
    importers()["cbis-ddsm"](tmp_path / "src", tmp_path / "out")
    table = load_structured_labels(tmp_path / "out" / "labels.csv", load_policy(None))
    assert any("incomplete_assessment" in why for _, why in table.problems)
    assert all(rec.label != "0" for (_, _, task), rec in table.breast.items() if task == "acr")


# --- VinDr-Mammo ------------------------------------------------------------------------------------
def vindr_fixture(src: Path) -> None:
    rows = []
    for i, (side, view, birads, density) in enumerate((("L", "CC", "BI-RADS 1", "DENSITY C"),
                                                       ("L", "MLO", "BI-RADS 1", "DENSITY C"),
                                                       ("R", "CC", "BI-RADS 4", "DENSITY C"),
                                                       ("R", "MLO", "BI-RADS 4", "DENSITY C"))):
        image_id = f"img{i:02d}abc"
        dicom(src / "images" / "study9f" / f"{image_id}.dicom", side, i, header_side=False)
        rows.append({"study_id": "study9f", "series_id": "s", "image_id": image_id, "laterality": side,
                     "view_position": view, "height": "96", "width": "80", "breast_birads": birads,
                     "breast_density": density, "split": "training"})
    rows.append({**rows[0], "image_id": "missing"})
    write_csv(src / "breast-level_annotations.csv", rows)
    write_csv(src / "finding_annotations.csv", [{**rows[2], "finding_categories": "['Mass']", "finding_birads":
                                                 "BI-RADS 4", "xmin": "10", "ymin": "10", "xmax": "20", "ymax": "20"}])


def test_vindr_mammo_images_get_birads_and_density_per_breast(tmp_path):
    vindr_fixture(tmp_path / "src")
    s = importers()["vindr-mammo"](tmp_path / "src", tmp_path / "out")
    assert s["imported_images"] == 4 and s["skipped_by_reason"] == {"image listed, no DICOM file": 1}
    res = catalogue(tmp_path / "out")
    assert len(res.quarantine) == 0 and res.catalog["accession_key"].nunique() == 1
    lab = labels(tmp_path / "out").set_index("laterality")
    assert lab.loc["R", ["birads", "density", "malignancy"]].tolist() == ["4", "C", ""]


# --- INbreast ---------------------------------------------------------------------------------------
def inbreast_fixture(src: Path) -> None:
    for i, (num, side, view) in enumerate((("20586908", "R", "CC"), ("20586934", "R", "MLO"),
                                           ("22678622", "L", "CC"))):
        dicom(src / "AllDICOMs" / f"{num}_6c613a14b80a8591_MG_{side}_{view}_ANON.dcm", side, i, ViewPosition=view)
    sheet = "Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads\n" \
            "removed;removed;R;CC;201001;20586908;4;4c\nremoved;removed;R;MLO;201001;20586934;4;4c\n" \
            "removed;removed;L;CC;201001;22678622;2;1\nremoved;removed;L;MLO;201001;99999999;2;1\n"
    (src / "INbreast.csv").write_text(sheet)


def test_inbreast_images_get_birads_detail_and_acr_density(tmp_path):
    inbreast_fixture(tmp_path / "src")
    s = importers()["inbreast"](tmp_path / "src", tmp_path / "out")
    assert s["imported_images"] == 3 and s["skipped_by_reason"] == {"listed, no DICOM file": 1}
    res = catalogue(tmp_path / "out")
    assert len(res.quarantine) == 0
    lab = labels(tmp_path / "out").set_index("laterality")
    assert lab.loc["R", ["birads", "density"]].tolist() == ["4C", "D"]
    assert lab.loc["L", ["birads", "density"]].tolist() == ["1", "B"]
    assert_no_source_names(tmp_path / "out", "20586908", "ANON")


@pytest.mark.parametrize("suffix", [".xls", ".xlsx"])
def test_inbreast_reads_its_excel_sheet_with_numeric_file_names(tmp_path, suffix):
    """The real INbreast.xls stores File Name and ACR as numbers: they must match the DICOM names, not "….0"."""
    inbreast_fixture(tmp_path / "src")
    csv_sheet = tmp_path / "src" / "INbreast.csv"
    rows = [line.split(";") for line in csv_sheet.read_text().splitlines()]
    csv_sheet.unlink()
    cells = [rows[0]] + [[int(v) if v.isdigit() else v for v in row] for row in rows[1:]]
    if suffix == ".xls":
        import xlwt

        book = xlwt.Workbook()
        sheet = book.add_sheet("Sheet1")
        for i, row in enumerate(cells):
            for j, value in enumerate(row):
                sheet.write(i, j, value)
        book.save(str(tmp_path / "src" / "INbreast.xls"))
    else:
        import openpyxl

        book = openpyxl.Workbook()
        for row in cells:
            book.active.append(row)
        book.save(tmp_path / "src" / "INbreast.xlsx")
    s = importers()["inbreast"](tmp_path / "src", tmp_path / "out")
    assert s["imported_images"] == 3 and s["skipped_by_reason"] == {"listed, no DICOM file": 1}
    lab = labels(tmp_path / "out").set_index("laterality")
    assert lab.loc["R", ["birads", "density"]].tolist() == ["4C", "D"]


# --- CDD-CESM ---------------------------------------------------------------------------------------
def write_docx(path: Path, paragraphs: list[str]) -> None:
    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs)
    xml = ('<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
           f'wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>')
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("word/document.xml", xml)


def cesm_fixture(src: Path) -> None:
    rows = []
    for i, (side, view, kind) in enumerate((("L", "CC", "DM"), ("L", "MLO", "DM"), ("R", "CC", "DM"),
                                            ("R", "CC", "CESM"))):
        name = f"P1_{side}_{kind}_{view}"
        folder = "Low energy images of CDD-CESM" if kind == "DM" else "Subtracted images of CDD-CESM"
        px, _ = phantom_pixels(120, 100, side, seed=i, bits_stored=8, n_labels=0)
        (src / folder).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(src / folder / f"{name}.jpg"), px.astype(np.uint8))
        rows.append({"Image_name": name, "Patient_ID": "1", "Age": "50", "Side": side, "Type": kind,
                     "Breast density (ACR)": "B", "BIRADS": "5" if side == "R" else "1", "Findings": "",
                     "View": view, "Tags": "", "Machine": "", "Pathology Classification/ Follow up":
                     "Malignant" if side == "R" else "Normal"})
    write_csv(src / "Radiology manual annotations.csv", rows)
    write_docx(src / "Medical reports for cases" / "P1.docx",
               ["Mammography", "Right breast: irregular mass, BI-RADS 5.", "Left breast: ACR B, BI-RADS 1."])


def test_cdd_cesm_low_energy_jpegs_are_wrapped_as_dicom_and_reports_come_from_the_word_files(tmp_path):
    cesm_fixture(tmp_path / "src")
    s = importers()["cdd-cesm"](tmp_path / "src", tmp_path / "out")
    assert s["imported_images"] == 3
    assert s["skipped_by_reason"] == {"contrast-subtracted CESM image (an iodine map, not a mammogram)": 1}
    res = catalogue(tmp_path / "out")
    assert len(res.quarantine) == 0
    reports = pd.read_csv(tmp_path / "out" / "reports.csv", dtype=str)
    assert len(reports) == 1 and "BI-RADS 5" in reports.loc[0, "report_text"]
    lab = labels(tmp_path / "out").set_index("laterality")
    assert lab.loc["R", ["birads", "density", "malignancy"]].tolist() == ["5", "B", "1"]
    assert_no_source_names(tmp_path / "out", "P1_")


# --- EMBED ------------------------------------------------------------------------------------------
def embed_fixture(src: Path) -> None:
    meta = []
    for i, (side, view) in enumerate((("L", "CC"), ("R", "MLO"))):
        rel = f"cohort_1/10000001/1.2.3.{i}/1.2.3.{i}.1.dcm"
        dicom(src / "images" / rel, side, i)
        meta.append({"empi_anon": "10000001", "acc_anon": "5550001", "anon_dicom_path": f"/mnt/NAS2/images/{rel}",
                     "ImageLateralityFinal": side, "ViewPosition": view, "FinalImageType": "2D", "spot_mag": ""})
    write_csv(src / "tables" / "EMBED_OpenData_metadata.csv", meta)
    write_csv(src / "tables" / "EMBED_OpenData_clinical.csv", [
        {"empi_anon": "10000001", "acc_anon": "5550001", "side": "R", "asses": "S", "tissueden": "3",
         "path_severity": "0", "procdate_anon": "2019-03-01"},
        {"empi_anon": "10000001", "acc_anon": "5550001", "side": "L", "asses": "N", "tissueden": "3",
         "path_severity": "", "procdate_anon": ""},
        {"empi_anon": "10000001", "acc_anon": "5550001", "side": "X", "asses": "N", "tissueden": "3",
         "path_severity": "", "procdate_anon": ""}])


def test_embed_tables_give_birads_density_and_dated_pathology(tmp_path):
    embed_fixture(tmp_path / "src")
    s = importers()["embed"](tmp_path / "src", tmp_path / "out")
    assert s["imported_images"] == 2 and s["skipped"] == 1
    res = catalogue(tmp_path / "out")
    assert len(res.quarantine) == 0
    lab = labels(tmp_path / "out").set_index("laterality")
    assert lab.loc["R", ["birads", "density"]].tolist() == ["4", "C"]
    path = pd.read_csv(tmp_path / "out" / "pathology.csv", dtype=str)
    assert path[["laterality", "date", "result"]].values.tolist() == [["R", "2019-03-01", "malignant"]]


# --- every importer ---------------------------------------------------------------------------------
def test_every_documented_format_has_an_importer():
    assert set(importers()) == set(FORMATS)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_folder_that_is_not_the_dataset_fails_naming_what_is_missing(fmt, tmp_path):
    (tmp_path / "src").mkdir()
    with pytest.raises(ImportError_, match="found|lacks"):
        importers()[fmt](tmp_path / "src", tmp_path / "out")


def test_the_same_source_and_key_give_the_same_cohort_bytes(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMMO_PSEUDONYM_KEY", "k")
    mias_fixture(tmp_path / "src")
    a = importers()["mini-mias"](tmp_path / "src", tmp_path / "a")
    b = importers()["mini-mias"](tmp_path / "src", tmp_path / "b")
    assert a == b
    files = lambda root: {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}  # noqa
    assert files(tmp_path / "a") == files(tmp_path / "b")


def test_the_import_command_prints_what_was_imported_and_skipped(tmp_path):
    from typer.testing import CliRunner
    from pipelines.cli import app
    mias_fixture(tmp_path / "src")
    result = CliRunner().invoke(app, ["import", "mini-mias", str(tmp_path / "src"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "2 image(s) imported" in text and "skipped" in text
    assert json.loads((tmp_path / "o" / "import_summary.json").read_text())["imported_images"] == 2
    again = CliRunner().invoke(app, ["import", "mini-mias", str(tmp_path / "src"), "--out", str(tmp_path / "o")])
    assert again.exit_code == 2 and "not empty" in " ".join(again.output.split())
