"""The full-resolution viewer's data: a 16-bit image as a minimal, identifier-free DICOM.

The browser viewer (dwv, vendored under ``static/vendor``) reads DICOM. The app never sends an
original file — its header carries names, IDs and dates — but a new dataset holding only the
pixels of the preprocessed 16-bit cache PNG at its native resolution (the network's input,
``PreprocessConfig.height`` rows, 2048 by default; 3328 when preprocessed at full height), plus
the geometry and a default window. Built once per image, ahead of the request where it can be
(:mod:`review_app.prefetch`), and kept in memory, so opening an item or switching views is usually
a dictionary look-up.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

from review_app.images import ImageUnavailable

# dwv imports these bare module names; the import map sends them to the vendored UMD shims
IMPORT_MAP = json.dumps({"imports": {
    "konva": "/static/vendor/shims/konva.js",
    "jszip": "/static/vendor/shims/jszip.js",
    "magic-wand-tool": "/static/vendor/shims/magic-wand-tool.js",
}}, sort_keys=True)
IMPORT_MAP_CSP_HASH = "'sha256-" + base64.b64encode(hashlib.sha256(IMPORT_MAP.encode()).digest()).decode() + "'"

# window presets offered in the viewer, on the cache's 0..65535 scale: (name, center, width)
WINDOW_PRESETS = (("full range", 32768, 65536), ("soft tissue", 30000, 40000), ("dense", 42000, 30000),
                  ("calcifications", 48000, 20000))


def _uid(image_key: str) -> str:
    # a stable UID derived from the pseudonymised key (2.25 = UUID-derived root, PS3.5 B.2)
    return "2.25." + str(int(hashlib.sha256(image_key.encode()).hexdigest()[:30], 16))


def read_16bit(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageUnavailable(f"{path.name} is not a readable PNG")
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.dtype == np.uint8:
        image = image.astype(np.uint16) * 257
    if image.dtype != np.uint16:
        raise ImageUnavailable(f"{path.name}: unexpected pixel type {image.dtype}")
    return image


def dicom_bytes(pixels: np.ndarray, image_key: str) -> bytes:
    """A Secondary Capture dataset with pixels, geometry and a window only — no patient module."""
    rows, cols = pixels.shape
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = _uid(image_key)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = _uid(image_key + ":study")
    ds.SeriesInstanceUID = _uid(image_key + ":series")
    ds.Modality = "OT"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelSpacing = [1, 1]
    ds.WindowCenter, ds.WindowWidth = WINDOW_PRESETS[0][1], WINDOW_PRESETS[0][2]
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<u2").tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()
