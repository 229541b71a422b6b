"""Write one demo cohort folder: ``dicom/**.dcm``, ``reports.csv``, ``pathology.csv``,
``truth.parquet`` (layout in docs/CONTRACTS.md, "Cohort folder") and ``generator.json``
(the arguments, so a folder says how to regenerate it).

Same arguments -> byte-identical files: every random draw comes from
:func:`.seeding.rng_for`, UIDs and dates derive from the seed, rows are written in
patient order with fixed CSV/Parquet settings.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from . import pathology as pathology_mod
from .defects import DEFECT_KINDS, choose_defects, duplicate_name, file_bytes, mutate_header
from .dicom_writer import build_dataset, choose_header
from .plan import ExamPlan, plan_exam
from .profiles import COHORTS, profile
from .render import render_view
from .reports import second_reading, write_report
from .seeding import rng_for, uid_for
from .truth import write_truth
from .vendors import to_stored

GENERATOR_VERSION = "2"
MARKER = "generator.json"
OUTPUTS = ("reports.csv", "pathology.csv", "truth.parquet", MARKER)
REPORT_COLUMNS = ("accession_number", "patient_id", "study_date", "report_text", "reader_id", "reader_level")
MIN_HEIGHT, MAX_HEIGHT = 64, 4096
MAX_PATIENTS = 100_000


@dataclass(frozen=True)
class CohortSummary:
    cohort: str
    out: Path
    patients: int
    exams: int
    images: int                     # image rows in the truth (one per file under dicom/)
    dicom_files: int                # files written under dicom/ (duplicates included)
    breasts: int
    malignant_breasts: int
    malignant_images: int
    reports: int
    pathology_rows: int
    defects: dict[str, int] = field(default_factory=dict)
    vendors: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["out"] = str(self.out)
        return d


def _validate(cohort: str, patients: int, seed: int, height: int) -> None:
    if cohort not in COHORTS:
        raise ValueError(f"cohort must be one of {', '.join(COHORTS)}; got {cohort!r}")
    if not isinstance(patients, int) or not 1 <= patients <= MAX_PATIENTS:
        raise ValueError(f"patients must be an integer in 1..{MAX_PATIENTS}; got {patients!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    if not isinstance(height, int) or not MIN_HEIGHT <= height <= MAX_HEIGHT:
        raise ValueError(f"height must be an integer in {MIN_HEIGHT}..{MAX_HEIGHT} pixels; got {height!r}")


def _prepare(out: Path) -> None:
    """Refuse to write over a folder this generator did not write; replace one it did."""
    out.mkdir(parents=True, exist_ok=True)
    ours = (out / MARKER).is_file()
    clashes = [p.name for p in [out / "dicom", *(out / name for name in OUTPUTS)] if p.exists()]
    if clashes and not ours:
        raise FileExistsError(
            f"{out} already holds {', '.join(sorted(clashes))} but no {MARKER}: it was not written by the demo "
            f"generator, so nothing is overwritten. Choose an empty or new --out folder.")
    if ours:
        shutil.rmtree(out / "dicom", ignore_errors=True)
        for name in OUTPUTS:
            (out / name).unlink(missing_ok=True)


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        writer.writeheader()
        writer.writerows(rows)


def _image_path(exam: ExamPlan, instance: int) -> str:
    series = 71 if exam.for_processing else 1
    return f"dicom/ST{exam.index + 1:06d}/SE{series:02d}/IM{instance:04d}.dcm"


def generate_cohort(cohort: str, patients: int, seed: int, out: Path, height: int = 512, defects: bool = True,
                    progress: Callable[[int, int], None] | None = None) -> CohortSummary:
    """Generate ``patients`` patients (one exam each) of ``cohort`` into ``out``.

    ``progress(done, total)`` is called after each patient (the CLI draws a bar with it).
    """
    _validate(cohort, patients, seed, height)
    out = Path(out)
    _prepare(out)
    # the marker goes first, so a run that dies half-way leaves a folder a rerun may replace
    marker = {"generator": "mammo-mtl demo-data", "version": GENERATOR_VERSION, "cohort": cohort,
              "patients": patients, "seed": seed, "height": height, "defects": defects,
              "orientation": "L: chest wall at x=0 (breast faces right); R: chest wall at x=cols-1",
              "synthetic": True}
    (out / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    prof = profile(cohort)

    exams = [plan_exam(prof, seed, i) for i in range(patients)]
    all_images = [(e.index, v.instance) for e in exams for v in e.images]
    planted = choose_defects(all_images, seed, cohort) if defects else {}

    truth_rows: list[dict] = []
    report_rows: list[dict] = []
    pathology_rows: list[dict] = []
    defect_counts: Counter = Counter()
    vendor_counts: Counter = Counter()
    n_files = 0

    for done, exam in enumerate(exams, start=1):
        report, labels = write_report(exam, prof, rng_for(seed, cohort, exam.index, "report"))
        if report is not None:
            report_rows.append(asdict(report))
        second_labels, discordant = None, None
        if report is not None and exam.second_reader is not None:
            second, second_labels, discordant = second_reading(exam, prof,
                                                               rng_for(seed, cohort, exam.index, "report", 2))
            report_rows.append(asdict(second))
        pathology_rows.extend(pathology_mod.pathology_rows(exam))
        uids = {"study": uid_for(seed, cohort, exam.index, "study"),
                "series": uid_for(seed, cohort, exam.index, "series", 71 if exam.for_processing else 1)}

        for view in exam.images:
            rendered = render_view(exam, view, height, seed)
            hrng = rng_for(seed, cohort, exam.index, "pixels", view.instance, 999)
            stored = to_stored(rendered.image, rendered.mask, exam.manufacturer, exam.for_processing,
                               rng_for(seed, cohort, exam.index, "pixels", view.instance, 998), hrng)
            choices = choose_header(hrng, exam)
            defect = planted.get((exam.index, view.instance))
            sop = uid_for(seed, cohort, exam.index, "sop", view.instance)
            ds = build_dataset(exam, view, stored, {**uids, "sop": sop}, choices)
            if defect in ("wrong_modality", "no_pixel_data", "laterality_unknown"):
                mutate_header(ds, defect)
            rel = _image_path(exam, view.instance)
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            data = file_bytes(defect, ds, rendered.image)
            path.write_bytes(data)
            n_files += 1
            vendor_counts[exam.manufacturer] += 1
            breast = exam.breasts[view.laterality]
            row = {
                "level": "image", "patient_id": exam.patient_id, "accession_number": exam.accession,
                "laterality": view.laterality, "file": rel, "sop_instance_uid": sop,
                "study_instance_uid": uids["study"], "view": view.view, "malignant": breast.malignant,
                "acr": breast.acr, "density": breast.density, "lesion_boxes": rendered.lesion_boxes,
                "lesion_kinds": rendered.lesion_kinds, "text_boxes": rendered.text_boxes,
                "planted_defect": None if defect == "duplicate_sop" else defect,
                "manufacturer": exam.manufacturer,
                "presentation_intent": "FOR PROCESSING" if exam.for_processing else "FOR PRESENTATION",
                "photometric_interpretation": stored.photometric, "bits_stored": stored.bits_stored,
                "transfer_syntax": str(ds.file_meta.TransferSyntaxUID), "rows": height,
                "cols": stored.array.shape[1], "chest_wall_side": rendered.chest_wall_side,
                "tag_quirks": sorted(q for q in choices.quirks if q != "series_description"),
            }
            truth_rows.append(row)
            if defect is not None:
                defect_counts[defect] += 1
            if defect == "duplicate_sop":
                copy_rel = duplicate_name(Path(rel)).as_posix()
                (out / copy_rel).write_bytes(data)
                n_files += 1
                truth_rows.append({**row, "file": copy_rel, "planted_defect": "duplicate_sop"})

        for lat in ("R", "L"):
            b = exam.breasts[lat]
            truth_rows.append({
                "level": "breast", "patient_id": exam.patient_id, "accession_number": exam.accession,
                "laterality": lat, "malignant": b.malignant, "acr": b.acr, "density": b.density,
                "manufacturer": exam.manufacturer, "report_present": labels.present,
                "report_acr": labels.acr[lat], "report_density": labels.density[lat],
                "report_malignant": labels.malignant(lat), "pathology_malignant": b.pathology_malignant,
                "report_acr_missing": labels.acr[lat] is None, "report_density_missing": labels.density[lat] is None,
                "report_density_range": labels.density_range, "report_revised_by_addendum": labels.revised_by_addendum[lat],
                "report_hedged": labels.hedged, "report_style": labels.style, "reader_level": exam.reader_level,
                "n_findings": len(b.findings),
                "second_reader_acr": second_labels.acr[lat] if second_labels else None,
                "second_reader_level": exam.second_reader[1] if second_labels else None,
                "readers_disagree": (discordant == lat) if second_labels else None,
                "lesion_kinds": [f.kind for f in b.findings],
            })
        if progress is not None:
            progress(done, patients)

    _write_csv(out / "reports.csv", REPORT_COLUMNS, report_rows)
    _write_csv(out / "pathology.csv", pathology_mod.COLUMNS, pathology_rows)
    write_truth(truth_rows, out / "truth.parquet")
    image_rows = [r for r in truth_rows if r["level"] == "image"]
    breast_rows = [r for r in truth_rows if r["level"] == "breast"]
    return CohortSummary(
        cohort=cohort, out=out, patients=patients, exams=len(exams), images=len(image_rows), dicom_files=n_files,
        breasts=len(breast_rows), malignant_breasts=sum(r["malignant"] for r in breast_rows),
        malignant_images=sum(r["malignant"] for r in image_rows), reports=len(report_rows),
        pathology_rows=len(pathology_rows), defects={k: defect_counts[k] for k in DEFECT_KINDS if defect_counts[k]},
        vendors=dict(sorted(vendor_counts.items())),
    )
