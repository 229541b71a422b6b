"""VinDr-Mammo (PhysioNet): DICOM + ``breast-level_annotations.csv`` + ``finding_annotations.csv``.

Documented layout: ``images/<study_id>/<image_id>.dicom``; breast-level table columns
``study_id, series_id, image_id, laterality (L/R), view_position (CC/MLO), height, width,
breast_birads ("BI-RADS 1".."BI-RADS 5"), breast_density ("DENSITY A".."DENSITY D"), split``.
The finding table adds per-lesion boxes and categories (read and counted; boxes are not labels
of this pipeline).

Labels given per breast: ``birads`` and ``density`` (double read, arbitrated). Not given:
malignancy (VinDr has no pathology). One study = one patient in the public release.
"""

from __future__ import annotations

from pathlib import Path

from curation.importers.common import CohortWriter, find_one, need_columns, read_table, rewrite_dicom

FORMAT = "vindr"


def _value(text: str, prefix: str) -> str:
    return str(text).upper().replace(prefix, "").strip()


def import_vindr(src: Path, out: Path) -> dict:
    src, w = Path(src), CohortWriter(Path(out), FORMAT)
    breast = read_table(find_one(src, "breast-level_annotations.csv"))
    need_columns(breast, ["study_id", "image_id", "laterality", "view_position", "breast_birads", "breast_density"],
                 "breast-level_annotations.csv")
    try:
        findings = read_table(find_one(src, "finding_annotations.csv"))
        w.notes.append(f"finding_annotations.csv: {len(findings)} finding rows read (boxes are not labels here)")
    except ValueError:
        w.notes.append("finding_annotations.csv absent: only breast-level labels imported")
    files = {p.stem: p for p in sorted(src.rglob("*.dicom"))} | {p.stem: p for p in sorted(src.rglob("*.dcm"))}
    listed = set()
    for number, row in enumerate(breast.to_dict("records"), start=2):
        image_id, study = str(row["image_id"]).strip(), str(row["study_id"]).strip()
        listed.add(image_id)
        side, view = str(row["laterality"]).strip().upper(), str(row["view_position"]).strip().upper()
        path = files.get(image_id)
        if path is None:
            w.skip(f"row {number}", "image listed, no DICOM file")
            continue
        if side not in ("L", "R"):
            w.skip(f"row {number}", f"laterality {side!r} is not L/R")
            continue
        patient, accession = w.pid("patient", study), w.pid("accession", study)
        ds = rewrite_dicom(path, w, patient=patient, accession=accession, laterality=side, view=view or None)
        w.write_dicom(ds, patient, w.pid("image", image_id), path.relative_to(src).as_posix())
        birads = _value(row["breast_birads"], "BI-RADS")
        density = _value(row["breast_density"], "DENSITY")
        w.label(accession, side, birads=birads if birads in {"0", "1", "2", "3", "4", "5", "6"} else None,
                density=density if density in {"A", "B", "C", "D"} else None)
    for image_id in sorted(set(files) - listed):
        w.skip(files[image_id].name, "DICOM without a breast-level row")
    return w.finish()
