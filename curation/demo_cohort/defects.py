"""Planted bad inputs, so the demo quarantine is never empty and ingest's reasons are exercised.

About 1.5 % of the images (at least one once a cohort has 8 images), cycling through the
kinds in a fixed order; which images is drawn from the seed. The truth's
``planted_defect`` column names the kind for each affected file:

* ``not_dicom`` — a PNG export saved under a ``.dcm`` name;
* ``truncated`` — a transfer cut off inside the pixel data;
* ``wrong_modality`` — a CT image in the MG folder;
* ``no_pixel_data`` — a header without (7FE0,0010);
* ``duplicate_sop`` — the same SOP instance sent twice under another file name (the extra
  copy is the defect row; the original stays a clean row);
* ``laterality_unknown`` — no ImageLaterality, no Laterality, no PatientOrientation, no
  SeriesDescription: nothing in the header says which breast.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from pydicom.dataset import FileDataset

from .dicom_writer import CT_IMAGE_STORAGE
from .seeding import rng_for

DEFECT_KINDS = ("not_dicom", "truncated", "wrong_modality", "no_pixel_data", "duplicate_sop", "laterality_unknown")
DEFECT_RATE = 0.015
MIN_IMAGES_FOR_DEFECTS = 8


def choose_defects(images: list[tuple[int, int]], seed: int, cohort: str) -> dict[tuple[int, int], str]:
    """Map (exam index, instance) -> defect kind for a deterministic subset of ``images``."""
    if len(images) < MIN_IMAGES_FOR_DEFECTS:
        return {}
    n = max(1, int(round(DEFECT_RATE * len(images))))
    rng = rng_for(seed, cohort, 0, "defects", len(images))
    picked = sorted(int(i) for i in rng.choice(len(images), size=n, replace=False))
    return {images[i]: DEFECT_KINDS[k % len(DEFECT_KINDS)] for k, i in enumerate(picked)}


def mutate_header(ds: FileDataset, kind: str) -> None:
    """Header-level defects, applied before the file is written."""
    if kind == "wrong_modality":
        ds.Modality = "CT"
        ds.SOPClassUID = CT_IMAGE_STORAGE
        ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
        for tag in ("PresentationIntentType", "ViewCodeSequence"):
            if tag in ds:
                delattr(ds, tag)
    elif kind == "no_pixel_data":
        del ds.PixelData
    elif kind == "laterality_unknown":
        for tag in ("ImageLaterality", "Laterality", "PatientOrientation", "SeriesDescription"):
            if tag in ds:
                delattr(ds, tag)


def dataset_bytes(ds: FileDataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def file_bytes(kind: str | None, ds: FileDataset, display: np.ndarray) -> bytes:
    """The bytes that land on disk for an image with (or without) a byte-level defect."""
    if kind == "not_dicom":
        ok, png = cv2.imencode(".png", np.round(display * 255).astype(np.uint8))
        if not ok:
            raise RuntimeError("PNG encoding failed while planting a not_dicom defect")
        return png.tobytes()
    data = dataset_bytes(ds)
    if kind == "truncated":
        return data[: int(len(data) * 0.6)]
    return data


def duplicate_name(path: Path) -> Path:
    """The name the duplicate copy gets: same folder, sorts after the original."""
    return path.with_name(path.stem + "_resent" + path.suffix)
