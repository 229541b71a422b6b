"""Digital Mammography X-Ray Image IODs written with pydicom 3.

Header realism that ingest must cope with (all recorded in the truth table's
``tag_quirks`` column so tests know what was planted):

* laterality in ImageLaterality (0020,0062) — sometimes only the series-level
  Laterality (0020,0060), rarely contradicted by PatientOrientation;
* view in ViewPosition (0018,5101) and ViewCodeSequence (0054,0220) with SNOMED-CT or
  legacy SRT codes — either may be absent, and rarely they contradict each other;
* fake PHI in PatientName, PatientID, PatientBirthDate, AccessionNumber, InstitutionName,
  ReferringPhysicianName (distinctive ``ZZ…`` values, see :mod:`.plan`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (ExplicitVRLittleEndian, ImplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID,
                         RLELossless)

from .plan import ExamPlan, ImagePlan
from .seeding import dicom_date
from .vendors import StoredPixels

MG_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
MG_FOR_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.2.1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"

# (SNOMED-CT code, legacy SRT code, meaning) — PS3.16 CID 4014 "View for Mammography"
VIEW_CODES = {
    "CC": ("399162004", "R-10242", "cranio-caudal"),
    "MLO": ("399368009", "R-10226", "medio-lateral oblique"),
    "ML": ("399260004", "R-10224", "medio-lateral"),
}
# Row direction \ column direction (PS3.3 C.7.6.1.1.1); see the convention in .anatomy
ORIENTATION = {("L", "CC"): "A\\R", ("R", "CC"): "P\\L", ("L", "MLO"): "A\\F", ("R", "MLO"): "P\\F",
               ("L", "ML"): "A\\F", ("R", "ML"): "P\\F"}
DETECTOR_HEIGHT_MM = 300.0


@dataclass
class HeaderChoices:
    """Per-image header variations; the names double as ``tag_quirks`` entries in the truth."""
    transfer_syntax: str = ExplicitVRLittleEndian
    use_srt_codes: bool = False
    quirks: list[str] = field(default_factory=list)


def choose_header(rng: np.random.Generator, exam: ExamPlan) -> HeaderChoices:
    u = rng.random()
    ts = RLELossless if u < 0.04 else ImplicitVRLittleEndian if u < 0.12 else ExplicitVRLittleEndian
    choices = HeaderChoices(transfer_syntax=ts, use_srt_codes=exam.manufacturer == "HOLOGIC, Inc.")
    for quirk, p in (("series_laterality_only", 0.03), ("view_code_missing", 0.04), ("view_position_missing", 0.02),
                     ("view_conflict", 0.015), ("laterality_conflict", 0.01), ("orientation_missing", 0.03),
                     ("series_description", 0.5)):
        if rng.random() < p:
            choices.quirks.append(quirk)
    # a tag cannot both be missing and contradict: keep the quirk that is actually visible
    if "view_position_missing" in choices.quirks and "view_conflict" in choices.quirks:
        choices.quirks.remove("view_conflict")
    if "series_laterality_only" in choices.quirks and "laterality_conflict" in choices.quirks:
        choices.quirks.remove("laterality_conflict")
    return choices


def _other_view(view: str) -> str:
    return "CC" if view != "CC" else "MLO"


def build_dataset(exam: ExamPlan, view: ImagePlan, pixels: StoredPixels, uids: dict[str, str],
                  choices: HeaderChoices) -> FileDataset:
    sop_class = MG_FOR_PROCESSING if exam.for_processing else MG_FOR_PRESENTATION
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = uids["sop"]
    meta.TransferSyntaxUID = (ExplicitVRLittleEndian if choices.transfer_syntax == RLELossless
                              else choices.transfer_syntax)
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "MAMMO_MTL_DEMO"

    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    day = dicom_date(exam.study_date)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", ""]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uids["sop"]
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = day
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = exam.study_time
    ds.AccessionNumber = exam.accession
    ds.Modality = "MG"
    ds.PresentationIntentType = "FOR PROCESSING" if exam.for_processing else "FOR PRESENTATION"
    ds.Manufacturer = exam.manufacturer
    ds.InstitutionName = exam.institution
    ds.ReferringPhysicianName = exam.referring
    ds.ManufacturerModelName = exam.model
    ds.PatientName = exam.patient_name
    ds.PatientID = exam.patient_id
    ds.PatientBirthDate = dicom_date(exam.birth_date)
    ds.PatientSex = "F"
    ds.BodyPartExamined = "BREAST"
    ds.StudyInstanceUID = uids["study"]
    ds.SeriesInstanceUID = uids["series"]
    ds.StudyID = f"{exam.index + 1}"
    ds.SeriesNumber = 71 if exam.for_processing else 1
    ds.InstanceNumber = view.instance

    lat, true_view = view.laterality, view.view
    q = set(choices.quirks)
    if "series_description" in q:
        ds.SeriesDescription = f"{lat} {true_view}"
    if "series_laterality_only" in q:
        ds.Laterality = lat
    else:
        ds.ImageLaterality = ("L" if lat == "R" else "R") if "laterality_conflict" in q else lat
    if "orientation_missing" not in q:
        ds.PatientOrientation = ORIENTATION[(lat, true_view)].split("\\")
    if "view_position_missing" not in q:
        ds.ViewPosition = _other_view(true_view) if "view_conflict" in q else true_view
    if "view_code_missing" not in q:
        snomed, srt, meaning = VIEW_CODES[true_view]
        item = Dataset()
        item.CodeValue = srt if choices.use_srt_codes else snomed
        item.CodingSchemeDesignator = "SRT" if choices.use_srt_codes else "SCT"
        item.CodeMeaning = meaning
        ds.ViewCodeSequence = Sequence([item])

    arr = pixels.array
    rows, cols = arr.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = pixels.photometric
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = 16
    ds.BitsStored = pixels.bits_stored
    ds.HighBit = pixels.bits_stored - 1
    ds.PixelRepresentation = 0
    spacing = round(DETECTOR_HEIGHT_MM / rows, 5)
    ds.ImagerPixelSpacing = [spacing, spacing]
    ds.WindowCenter, ds.WindowWidth = pixels.window
    if pixels.rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = pixels.rescale
        ds.RescaleType = "US"
    ds.BurnedInAnnotation = "YES"
    ds.BreastImplantPresent = "NO"
    ds.LossyImageCompression = "00"

    if choices.transfer_syntax == RLELossless:
        # keep the planned SOP Instance UID: recompression must not mint a random one
        ds.compress(RLELossless, arr, generate_instance_uid=False)
    else:
        ds.PixelData = arr.astype("<u2").tobytes()
    return ds
