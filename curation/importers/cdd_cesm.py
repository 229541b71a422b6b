"""CDD-CESM (Categorized Digital Database for Contrast-Enhanced Spectral Mammography, TCIA):
JPEG images + ``Radiology manual annotations`` sheet + Word reports per case.

Documented layout: ``Low energy images of CDD-CESM/<Image_name>.jpg`` (the low-energy image is
a standard full-field mammogram), ``Subtracted images of CDD-CESM/<Image_name>.jpg`` (the
iodine map — not a mammogram: skipped with that reason), the sheet (xlsx or CSV export) with
``Image_name`` (``P1_L_DM_MLO``), ``Patient_ID``, ``Side`` (L/R), ``Type`` (DM/CESM),
``Breast density (ACR)`` (A–D), ``BIRADS``, ``View`` (CC/MLO), ``Pathology Classification/ Follow up``
(Normal/Benign/Malignant), and ``Medical reports for cases/P<n>.docx``.

Labels given per breast: ``birads``, ``density``, ``malignancy`` (Malignant -> 1, Benign/Normal -> 0);
reports.csv from the Word reports (text only; the dataset gives no dates).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import cv2

from curation.importers.common import CohortWriter, find_one, need_columns, read_table, wrap_pixels

FORMAT = "cesm"
_DENSITY = {"A": "A", "B": "B", "C": "C", "D": "D", "1": "A", "2": "B", "3": "C", "4": "D"}
_MALIGNANT = {"MALIGNANT": "1", "BENIGN": "0", "NORMAL": "0"}


def docx_text(path: Path) -> str:
    """Plain text of a .docx (paragraphs joined by newlines), without a Word library."""
    with zipfile.ZipFile(path) as z:
        xml = z.read("word/document.xml").decode("utf-8", errors="replace")
    paragraphs = re.findall(r"<w:p[ >].*?</w:p>", xml, flags=re.S)
    text = ["".join(re.findall(r"<w:t[^>]*>(.*?)</w:t>", p, flags=re.S)) for p in paragraphs]
    return "\n".join(t for t in text if t.strip()).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")


def import_cdd_cesm(src: Path, out: Path) -> dict:
    src, w = Path(src), CohortWriter(Path(out), FORMAT)
    sheet = read_table(find_one(src, "Radiology*manual*annotations*.xlsx", "Radiology*manual*annotations*.csv",
                                "*annotations*.csv"))
    need_columns(sheet, ["Image_name", "Patient_ID", "Side", "Type", "View"], "annotation sheet")
    density_col = next((c for c in sheet.columns if c.lower().startswith("breast density")), None)
    path_col = next((c for c in sheet.columns if c.lower().startswith("pathology")), None)
    jpgs = {p.stem.strip(): p for p in sorted(src.rglob("*.jpg"))}
    seen, patients = set(), {}
    for number, row in enumerate(sheet.to_dict("records"), start=2):
        name = str(row["Image_name"]).strip()
        if name in seen:
            continue  # one sheet row per finding: the image is imported once, labels merged below
        seen.add(name)
        if str(row["Type"]).strip().upper() != "DM":
            w.skip(name, "contrast-subtracted CESM image (an iodine map, not a mammogram)")
            continue
        path, side = jpgs.get(name), str(row["Side"]).strip().upper()
        if path is None:
            w.skip(f"sheet row {number}", "listed, no JPEG file")
            continue
        if side not in ("L", "R"):
            w.skip(f"sheet row {number}", f"Side {side!r} is not L/R")
            continue
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            w.skip(path.name, "unreadable JPEG")
            continue
        person = str(row["Patient_ID"]).strip()
        patient, accession = w.pid("patient", person), w.pid("accession", person)
        patients[person] = (patient, accession)
        ds = wrap_pixels(img, w, patient=patient, accession=accession, image=w.pid("image", name), laterality=side,
                         view=str(row["View"]).strip().upper(), description="CDD-CESM low-energy image")
        w.write_dicom(ds, patient, w.pid("image", name), path.relative_to(src).as_posix())
    for number, row in enumerate(sheet.to_dict("records"), start=2):
        person, side = str(row["Patient_ID"]).strip(), str(row["Side"]).strip().upper()
        if person not in patients or side not in ("L", "R"):
            continue
        birads = str(row.get("BIRADS", "")).strip().split(".")[0]
        w.label(patients[person][1], side, birads=birads if birads in {"0", "1", "2", "3", "4", "5", "6"} else None,
                density=_DENSITY.get(str(row.get(density_col, "")).strip().upper()) if density_col else None,
                malignancy=_MALIGNANT.get(str(row.get(path_col, "")).strip().upper()) if path_col else None)
    docs = {p.stem.strip().upper(): p for p in sorted(src.rglob("*.docx"))}
    for person, (patient, accession) in sorted(patients.items()):
        doc = docs.get(person.upper()) or docs.get(f"P{person}".upper())
        if doc is None:
            w.skip(f"patient {patient}", "no report .docx")
            continue
        try:
            text = docx_text(doc)
        except (zipfile.BadZipFile, KeyError):
            w.skip(doc.name, "not a readable .docx")
            continue
        w.reports.append({"accession_number": accession, "patient_id": patient, "study_date": "",
                          "report_text": text, "reader_id": "", "reader_level": ""})
    for stem in sorted(set(jpgs) - seen):
        w.skip(jpgs[stem].name, "image without a sheet row")
    return w.finish()
