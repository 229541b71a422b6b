"""CBIS-DDSM (Curated Breast Imaging Subset of DDSM, TCIA): DICOM + case description CSVs.

Documented layout: ``mass_case_description_{train,test}_set.csv`` and
``calc_case_description_{train,test}_set.csv``, one row per abnormality with ``patient_id``,
``breast density`` (mass) / ``breast_density`` (calc) 1–4, ``left or right breast`` LEFT/RIGHT,
``image view`` CC/MLO, ``assessment`` (BI-RADS 0–5), ``pathology`` MALIGNANT / BENIGN /
BENIGN_WITHOUT_CALLBACK and ``image file path`` whose first folder names the full mammogram
(``Mass-Training_P_00001_LEFT_CC``). The TCIA download has one folder per image under that name;
cropped ROI and mask images live in folders with a ``_<n>`` suffix and are not mammograms.

Labels given per breast: ``birads`` = the highest assessment of its abnormalities, ``density``
1–4 -> A–D, ``malignancy`` = 1 if any abnormality is MALIGNANT else 0 (biopsy-proven; no dates,
so it is a structured label, not a pathology.csv row).
"""

from __future__ import annotations

import re
from pathlib import Path

from curation.importers.common import CohortWriter, ImportError_, need_columns, read_table, rewrite_dicom

FORMAT = "cbis"
_FOLDER = re.compile(r"^(Mass|Calc)-(Training|Test)_(P_\d+)_(LEFT|RIGHT)_(CC|MLO)$")
_DENSITY = {"1": "A", "2": "B", "3": "C", "4": "D"}


def _full_image_folders(src: Path) -> dict[str, list[Path]]:
    """Folder name (``Mass-Training_P_00001_LEFT_CC``) -> its DICOM files (ROI/crop folders excluded)."""
    found: dict[str, list[Path]] = {}
    for path in sorted(src.rglob("*.dcm")):
        for part in path.relative_to(src).parts[:-1]:
            if _FOLDER.match(part):
                found.setdefault(part, []).append(path)
                break
    return found


def import_cbis_ddsm(src: Path, out: Path) -> dict:
    src, w = Path(src), CohortWriter(Path(out), FORMAT)
    tables = sorted(src.rglob("*case_description*.csv"))
    if not tables:
        raise ImportError_(f"{src}: no *_case_description_*.csv (the CBIS-DDSM description tables) found")
    breasts: dict[str, dict] = {}
    for table in tables:
        frame = read_table(table)
        frame = frame.rename(columns={"breast_density": "breast density"})
        need_columns(frame, ["patient_id", "breast density", "left or right breast", "image view", "assessment",
                             "pathology", "image file path"], table.name)
        for number, row in enumerate(frame.to_dict("records"), start=2):
            folder = str(row["image file path"]).strip().split("/")[0]
            m = _FOLDER.match(folder)
            if not m:
                w.skip(f"{table.name} row {number}", "image file path does not start with a full-mammogram folder")
                continue
            entry = breasts.setdefault(folder, {"patient": m.group(3), "side": m.group(4)[0], "view": m.group(5),
                                                "birads": [], "density": set(), "pathology": set()})
            if str(row["assessment"]).strip().isdigit():
                entry["birads"].append(int(row["assessment"]))
            if str(row["breast density"]).strip() in _DENSITY:
                entry["density"].add(_DENSITY[str(row["breast density"]).strip()])
            entry["pathology"].add(str(row["pathology"]).strip().upper())
    files = _full_image_folders(src)
    for folder in sorted(set(breasts) - set(files)):
        w.skip(folder, "described in the CSVs, no DICOM found")
    for folder, paths in sorted(files.items()):
        entry = breasts.get(folder)
        if entry is None:
            w.skip(folder, "DICOM without a description row")
            continue
        patient, accession = w.pid("patient", entry["patient"]), w.pid("accession", entry["patient"])
        for i, path in enumerate(paths):
            image = w.pid("image", f"{folder}/{i}")
            ds = rewrite_dicom(path, w, patient=patient, accession=accession, laterality=entry["side"],
                               view=entry["view"])
            w.write_dicom(ds, patient, image, path.relative_to(src).as_posix())
    by_breast: dict[tuple[str, str], dict] = {}
    for folder in sorted(files):
        entry = breasts.get(folder)
        if entry is None:
            continue
        b = by_breast.setdefault((entry["patient"], entry["side"]), {"birads": [], "density": set(), "pathology": set()})
        b["birads"] += entry["birads"]
        b["density"] |= entry["density"]
        b["pathology"] |= entry["pathology"]
    for (person, side), b in sorted(by_breast.items()):
        density = sorted(b["density"])
        if len(density) > 1:
            w.skip(f"breast {w.pid('accession', person)}:{side} density", f"rows disagree ({density}): left out")
        w.label(w.pid("accession", person), side, birads=str(max(b["birads"])) if b["birads"] else None,
                density=density[0] if len(density) == 1 else None,
                malignancy="1" if "MALIGNANT" in b["pathology"] else "0")
    return w.finish()
