"""Shared helpers of the public-dataset importers: the cohort folder writer, pseudonymous ids,
a DICOM MG wrapper for non-DICOM images (PGM, JPEG) and a header rewriter for DICOM ones.

An importer reads the dataset as documented by its publisher and calls :class:`CohortWriter`;
the writer produces the cohort folder the pipeline ingests::

    COHORT_DIR/dicom/<patient>/<image>.dcm   valid DICOM MG, laterality/view from the dataset's tables
    COHORT_DIR/labels.csv                    structured labels (docs/labels_csv.md)
    COHORT_DIR/pathology.csv                 only rows with a date (the pipeline's pathology window needs one)
    COHORT_DIR/reports.csv                   only for datasets with reports
    COHORT_DIR/import_summary.json           imported / skipped (with reasons) / notes
    COHORT_DIR/import_map.csv                dataset file -> written file (stays inside cohorts/, never ingested)

Ids are pseudonymous (``<3 letters of the format><kind letter><12 hex>``, HMAC with ``MAMMO_PSEUDONYM_KEY``); file names are
derived from them, so no dataset file or folder name reaches the DICOM tree.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

from curation.pseudonym import key_from_env
from curation.pydicom_privacy import dcmread

MG_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
LABEL_COLUMNS = ["accession_number", "laterality", "birads", "density", "malignancy"]
PATHOLOGY_COLUMNS = ["patient_id", "laterality", "date", "result", "source"]
REPORT_COLUMNS = ["accession_number", "patient_id", "study_date", "report_text", "reader_id", "reader_level"]
UID_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's root; entropy makes each UID deterministic


class ImportError_(ValueError):
    """The source folder is not the documented layout (a missing table or column); names what is missing."""


@dataclass
class CohortWriter:
    out: Path
    fmt: str
    key: bytes = field(default_factory=lambda: key_from_env()[0])
    labels: dict[tuple[str, str], dict] = field(default_factory=dict)
    pathology: list[dict] = field(default_factory=list)
    reports: list[dict] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)    # (what, reason) — no identifiers beyond file names
    imported: int = 0
    notes: list[str] = field(default_factory=list)
    _map: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self):
        self.out = Path(self.out)
        (self.out / "dicom").mkdir(parents=True, exist_ok=True)

    # --- identifiers --------------------------------------------------------------------------
    def pid(self, kind: str, value: str) -> str:
        digest = hmac.new(self.key, f"{self.fmt}:{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        return f"{self.fmt[:3]}{kind[0]}{digest[:12]}"  # 16 characters: fits the SH/LO VRs

    def uid(self, kind: str, value: str) -> str:
        return generate_uid(UID_ROOT, entropy_srcs=[self.fmt, kind, value, self.key.hex()])

    # --- rows -----------------------------------------------------------------------------------
    def skip(self, what: str, reason: str) -> None:
        self.skipped.append((what, reason))

    def label(self, accession: str, laterality: str, **values: str | None) -> None:
        """Merge labels of one breast; a later, different value for the same task is a conflict: skipped."""
        row = self.labels.setdefault((accession, laterality), {"accession_number": accession,
                                                               "laterality": laterality})
        for task, value in values.items():
            if value is None or value == "":
                continue
            if row.get(task) not in (None, "", value):
                self.skip(f"labels {accession}:{laterality}", f"conflicting {task} values {row[task]!r}/{value!r}: "
                                                             "the first is kept")
                continue
            row[task] = value

    def write_dicom(self, ds: FileDataset, patient: str, image: str, source: str) -> Path:
        rel = Path("dicom") / patient / f"{image}.dcm"
        (self.out / rel).parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(self.out / rel, enforce_file_format=True)
        self.imported += 1
        self._map.append((source, rel.as_posix()))
        return rel

    # --- output -----------------------------------------------------------------------------------
    def finish(self) -> dict:
        _write_csv(self.out / "labels.csv", LABEL_COLUMNS, sorted(self.labels.values(),
                                                                  key=lambda r: (r["accession_number"], r["laterality"])))
        _write_csv(self.out / "pathology.csv", PATHOLOGY_COLUMNS, self.pathology)
        if self.reports:
            _write_csv(self.out / "reports.csv", REPORT_COLUMNS, self.reports)
        _write_csv(self.out / "import_map.csv", ["source", "written"],
                   [{"source": s, "written": w} for s, w in sorted(self._map)])
        reasons = Counter(reason.split(":")[0] for _, reason in self.skipped)
        summary = {"format": self.fmt, "imported_images": self.imported, "breasts_labelled": len(self.labels),
                   "pathology_rows": len(self.pathology), "reports": len(self.reports),
                   "skipped": len(self.skipped), "skipped_by_reason": dict(sorted(reasons.items())),
                   "skipped_items": [{"what": w, "reason": r} for w, r in self.skipped[:500]],
                   "notes": self.notes}
        (self.out / "import_summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
        return summary


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: ("" if row.get(c) is None else row.get(c)) for c in columns})
    tmp.replace(path)


# --- DICOM --------------------------------------------------------------------------------------------
def wrap_pixels(pixels: np.ndarray, w: CohortWriter, *, patient: str, accession: str, image: str,
                laterality: str, view: str, description: str, study_date: str = "") -> FileDataset:
    """A valid DICOM MG For Presentation image around 8- or 16-bit grayscale pixels."""
    if pixels.ndim != 2:
        raise ValueError(f"expected a 2D grayscale image, got shape {pixels.shape}")
    bits = 8 if pixels.dtype == np.uint8 else 16
    top = int(pixels.max()) if pixels.size else 0
    stored = 8 if bits == 8 else max(10, int(top).bit_length())
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MG_FOR_PRESENTATION
    meta.MediaStorageSOPInstanceUID = w.uid("sop", image)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = MG_FOR_PRESENTATION, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PresentationIntentType = "MG", "FOR PRESENTATION"
    ds.ImageType = ["DERIVED", "PRIMARY", ""]
    ds.ConversionType = "DF"  # digitised film / converted from a non-DICOM file
    ds.PatientID, ds.PatientName, ds.AccessionNumber = patient, "", accession
    ds.StudyInstanceUID, ds.SeriesInstanceUID = w.uid("study", accession), w.uid("series", f"{accession}:{image}")
    ds.StudyDate = study_date
    ds.Manufacturer = f"{w.fmt} (converted)"
    ds.SeriesDescription = f"{laterality} {view}"
    ds.ImageComments = description[:60]
    ds.ImageLaterality, ds.ViewPosition = laterality, view
    ds.BodyPartExamined = "BREAST"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, stored, stored - 1, 0
    ds.WindowCenter, ds.WindowWidth = (2 ** stored) / 2, 2 ** stored
    ds.PixelData = np.ascontiguousarray(pixels.astype(np.uint8 if bits == 8 else np.uint16)).tobytes()
    return ds


def rewrite_dicom(path: Path, w: CohortWriter, *, patient: str, accession: str, laterality: str | None,
                  view: str | None) -> FileDataset:
    """A dataset DICOM with pseudonymous ids and the table's laterality/view (headers are often blank)."""
    ds = dcmread(path)
    ds.PatientID, ds.PatientName, ds.AccessionNumber = patient, "", accession
    for tag in ("PatientBirthDate", "InstitutionName", "ReferringPhysicianName", "OtherPatientIDs"):
        if tag in ds:
            delattr(ds, tag)
    if laterality:
        ds.ImageLaterality = laterality
    if view:
        ds.ViewPosition = view
    if not str(ds.get("Modality", "") or "").strip():
        ds.Modality = "MG"
    return ds


def read_table(path: Path):
    """CSV or spreadsheet -> pandas DataFrame of strings (.xls and .xlsx through ``python-calamine``, pandas'
    recommended engine; integral numbers such as INbreast's file names come back without a ".0")."""
    import pandas as pd
    suffix = path.suffix.lower()
    try:
        if suffix in (".xls", ".xlsx"):
            frame = pd.read_excel(path, dtype=str, engine="calamine")
        else:
            with path.open(encoding="utf-8", errors="replace") as fh:
                sample = fh.read(4096)
            sep = ";" if sample.count(";") > sample.count(",") else ","
            frame = pd.read_csv(path, dtype=str, sep=sep, keep_default_na=False)
    except ImportError as exc:
        raise ImportError_(f"{path.name}: reading {suffix} files needs python-calamine; "
                           f"`pip install python-calamine` or save the sheet as CSV") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.fillna("")


def need_columns(frame, columns: list[str], what: str) -> None:
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise ImportError_(f"{what} lacks column(s) {absent}; found {list(frame.columns)}")


def find_one(src: Path, *patterns: str) -> Path:
    for pattern in patterns:
        hits = sorted(src.rglob(pattern))
        if hits:
            return hits[0]
    raise ImportError_(f"{src}: none of {list(patterns)} found (is this the dataset's download folder?)")
