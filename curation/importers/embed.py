"""EMBED (Emory Breast Imaging Dataset, AWS Open Data): DICOM + clinical and metadata tables.

Documented layout: ``tables/EMBED_OpenData_clinical*.csv`` (one row per exam finding:
``empi_anon, acc_anon, side`` L/R/B, ``asses`` BI-RADS letter A N B P S M K, ``tissueden`` 1–4
(5 = male), ``path_severity`` 0 invasive / 1 non-invasive cancer / 2 high risk / 3 borderline /
4 benign / 5 negative, ``procdate_anon``) and ``tables/EMBED_OpenData_metadata*.csv`` (one row
per image: ``empi_anon, acc_anon, anon_dicom_path, ImageLateralityFinal, ViewPosition,
FinalImageType`` 2D/cview, ``spot_mag``). DICOM paths are matched by their part below ``images/``.

Labels given per breast: ``birads`` (letter -> 0–6), ``density`` (1–4 -> A–D), pathology rows
with their procedure date in pathology.csv (0/1 malignant, 2/3 high_risk, 4/5 benign); C-View and
spot/magnification images are imported and left to the ingest view-type policy.
"""

from __future__ import annotations

from pathlib import Path

from curation.importers.common import CohortWriter, find_one, need_columns, read_table, rewrite_dicom

FORMAT = "embed"
_ASSES = {"A": "0", "N": "1", "B": "2", "P": "3", "S": "4", "M": "5", "K": "6"}
_DENSITY = {"1": "A", "2": "B", "3": "C", "4": "D"}
_PATH = {"0": "malignant", "1": "malignant", "2": "high_risk", "3": "high_risk", "4": "benign", "5": "benign"}


def _tail(path: str) -> str:
    text = str(path).replace("\\", "/")
    return text.split("images/", 1)[1] if "images/" in text else text.lstrip("/")


def import_embed(src: Path, out: Path) -> dict:
    src, w = Path(src), CohortWriter(Path(out), FORMAT)
    clinical = read_table(find_one(src, "EMBED_OpenData_clinical*.csv"))
    meta = read_table(find_one(src, "EMBED_OpenData_metadata*.csv"))
    need_columns(clinical, ["empi_anon", "acc_anon", "side", "asses", "tissueden"], "EMBED clinical table")
    need_columns(meta, ["empi_anon", "acc_anon", "anon_dicom_path", "ImageLateralityFinal", "ViewPosition"],
                 "EMBED metadata table")
    on_disk = {}
    for p in sorted(src.rglob("*.dcm")):
        rel = p.relative_to(src).as_posix()
        on_disk[_tail(rel) if "images/" in rel else rel] = p
    written = set()
    for number, row in enumerate(meta.to_dict("records"), start=2):
        tail, side = _tail(row["anon_dicom_path"]), str(row["ImageLateralityFinal"]).strip().upper()
        path = on_disk.get(tail)
        if path is None:
            w.skip(f"metadata row {number}", "anon_dicom_path not found under SRC")
            continue
        if side not in ("L", "R"):
            w.skip(f"metadata row {number}", f"ImageLateralityFinal {side!r} is not L/R")
            continue
        patient = w.pid("patient", str(row["empi_anon"]).strip())
        accession = w.pid("accession", str(row["acc_anon"]).strip())
        ds = rewrite_dicom(path, w, patient=patient, accession=accession, laterality=side,
                           view=str(row["ViewPosition"]).strip().upper() or None)
        w.write_dicom(ds, patient, w.pid("image", tail), path.relative_to(src).as_posix())
        written.add(tail)
    for tail in sorted(set(on_disk) - written):
        w.skip(on_disk[tail].name, "DICOM without a metadata row")
    for number, row in enumerate(clinical.to_dict("records"), start=2):
        side = str(row["side"]).strip().upper()
        sides = ("L", "R") if side == "B" else (side,) if side in ("L", "R") else ()
        if not sides:
            w.skip(f"clinical row {number}", f"side {side!r} is not L/R/B")
            continue
        accession = w.pid("accession", str(row["acc_anon"]).strip())
        patient = w.pid("patient", str(row["empi_anon"]).strip())
        density = _DENSITY.get(str(row["tissueden"]).strip().split(".")[0])
        for s in sides:
            w.label(accession, s, birads=_ASSES.get(str(row["asses"]).strip().upper()), density=density)
            result = _PATH.get(str(row.get("path_severity", "")).strip().split(".")[0])
            date = str(row.get("procdate_anon", "")).strip()[:10]
            if result and date:
                w.pathology.append({"patient_id": patient, "laterality": s, "date": date, "result": result,
                                    "source": "biopsy"})
            elif result:
                w.skip(f"clinical row {number} pathology", "path_severity without procdate_anon: not usable")
    return w.finish()
