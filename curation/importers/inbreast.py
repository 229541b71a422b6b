"""INbreast (Porto, 410 FFDM images): DICOM + ``INbreast.xls`` (or its CSV/XLSX export).

Documented layout: ``AllDICOMs/<File Name>_<hash>_MG_<L|R>_<CC|ML>_ANON.dcm`` and the sheet with
``Laterality`` (L/R), ``View`` (CC/MLO), ``Acquisition date``, ``File Name`` (the leading number
of the DICOM file name), ``ACR`` (1–4, composition) and ``Bi-Rads`` (1–6, 4a–4c).

Labels given per breast: ``birads`` and ``density`` (ACR 1–4 -> A–D). Not given: a pathology
table (BI-RADS 6 means biopsy-proven cancer; that stays a BI-RADS label, nothing is inferred).
Exams are grouped by the DICOM PatientID and acquisition date.
"""

from __future__ import annotations

from pathlib import Path


from curation.importers.common import CohortWriter, find_one, need_columns, read_table, rewrite_dicom
from curation.pydicom_privacy import dcmread

FORMAT = "inbreast"
_DENSITY = {"1": "A", "2": "B", "3": "C", "4": "D"}
_BIRADS = {"0", "1", "2", "3", "4", "5", "6", "4A", "4B", "4C"}


def import_inbreast(src: Path, out: Path) -> dict:
    src, w = Path(src), CohortWriter(Path(out), FORMAT)
    sheet = read_table(find_one(src, "INbreast.xls", "INbreast.xlsx", "INbreast.csv", "*.xls", "*.xlsx"))
    need_columns(sheet, ["File Name", "Laterality", "View", "ACR", "Bi-Rads"], "INbreast sheet")
    files = {p.name.split("_")[0]: p for p in sorted(src.rglob("*.dcm"))}
    listed = set()
    for number, row in enumerate(sheet.to_dict("records"), start=2):
        name = str(row["File Name"]).strip().split(".")[0]
        if not name:
            continue  # the sheet's trailing summary rows have no file name
        listed.add(name)
        path = files.get(name)
        side, view = str(row["Laterality"]).strip().upper(), str(row["View"]).strip().upper()
        if path is None:
            w.skip(f"sheet row {number}", "listed, no DICOM file")
            continue
        if side not in ("L", "R"):
            w.skip(f"sheet row {number}", f"laterality {side!r} is not L/R")
            continue
        header = dcmread(path, stop_before_pixels=True)
        person = str(header.get("PatientID", "") or name)
        exam = f"{person}:{str(row.get('Acquisition date', '')).strip()}"
        patient, accession = w.pid("patient", person), w.pid("accession", exam)
        ds = rewrite_dicom(path, w, patient=patient, accession=accession, laterality=side,
                           view=view or None)
        w.write_dicom(ds, patient, w.pid("image", name), path.relative_to(src).as_posix())
        birads = str(row["Bi-Rads"]).strip().upper()
        density = str(row["ACR"]).strip().split(".")[0]
        w.label(accession, side, birads=birads if birads in _BIRADS else None, density=_DENSITY.get(density))
        if birads and birads not in _BIRADS:
            w.skip(f"sheet row {number} Bi-Rads", f"value {birads!r} is not a BI-RADS category: left out")
    for name in sorted(set(files) - listed):
        w.skip(files[name].name, "DICOM without a sheet row")
    return w.finish()
