"""Minimal, valid MG DICOM files for tests that must not depend on the demo generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

MG_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"

PHI = {
    "PatientName": "Zebulon^Quixotica",
    "PatientID": "MRN-99887766",
    "PatientBirthDate": "19510317",
    "AccessionNumber": "ACC-55443322",
    "InstitutionName": "Saint Hypothetical Hospital",
    "ReferringPhysicianName": "Dr^Imaginary^Referrer",
}


def make_mg(path: Path, *, sop_uid: str, laterality: str | None = "L", view: str | None = "CC",
            modality: str = "MG", rows: int = 64, cols: int = 48, pixels: np.ndarray | None = None,
            with_pixels: bool = True, frames: int = 1, patient_id: str = PHI["PatientID"],
            accession: str = PHI["AccessionNumber"], series_description: str | None = None,
            photometric: str = "MONOCHROME2") -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MG_FOR_PRESENTATION
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MG_FOR_PRESENTATION
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.Modality = modality
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.Manufacturer = "TestVendor"
    ds.StudyDate = "20200102"
    for tag, value in PHI.items():
        setattr(ds, tag, value)
    ds.PatientID = patient_id
    ds.AccessionNumber = accession
    if laterality is not None:
        ds.ImageLaterality = laterality
    if view is not None:
        ds.ViewPosition = view
        item = Dataset()
        item.CodeValue = {"CC": "399162004", "MLO": "399368009", "ML": "399260004"}[view]
        item.CodingSchemeDesignator = "SCT"
        item.CodeMeaning = {"CC": "cranio-caudal", "MLO": "medio-lateral oblique", "ML": "medio-lateral"}[view]
        ds.ViewCodeSequence = Sequence([item])
    if series_description:
        ds.SeriesDescription = series_description
    if with_pixels:
        arr = pixels if pixels is not None else (np.arange(rows * cols * frames, dtype=np.uint16) % 4096)
        arr = arr.reshape((frames, rows, cols) if frames > 1 else (rows, cols)).astype(np.uint16)
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = photometric
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        if frames > 1:
            ds.NumberOfFrames = frames
        ds.PixelData = arr.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
