"""Synthetic DICOM mammograms with known geometry, for tests and the benchmark.

A half-ellipse breast against the chest-wall edge (left edge for L, right edge for R, the
usual hanging convention), a skin line fainter than the parenchyma, a background that is not
exactly zero, dense "lesion" blobs inside the breast and burned-in label blocks apart from it.
The truth dict gives every box in stored-pixel coordinates, so a test can check that lesions
stay inside the crop and labels are zeroed. Contains no patient data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

MG_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"


@dataclass
class PhantomTruth:
    breast_box: tuple[int, int, int, int]                 # x0, y0, x1, y1 (exclusive) of the breast
    lesion_boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    text_boxes: list[tuple[int, int, int, int]] = field(default_factory=list)


def phantom_pixels(rows: int, cols: int, laterality: str = "L", *, seed: int = 0, bits_stored: int = 12,
                   n_lesions: int = 2, n_labels: int = 2, background: float = 0.03,
                   noise: float = 0.005) -> tuple[np.ndarray, PhantomTruth]:
    """Stored values (uint16, MONOCHROME2 sense: dense = high) and the truth boxes.

    ``background`` and ``noise`` are fractions of the stored range; the defaults keep the background
    ~6 SD above zero everywhere, like film base + fog or an unprocessed DR detector."""
    rng = np.random.default_rng(seed)
    top = 2 ** bits_stored - 1
    background = int(round(background * top))
    yy = np.arange(rows, dtype=np.float32)[:, None]
    xx = np.arange(cols, dtype=np.float32)[None, :]
    cy, ry = rows * 0.5, rows * 0.40
    rx = cols * 0.55
    d = ((yy - cy) / ry) ** 2 + (xx / rx) ** 2  # chest wall at x = 0
    inside = d < 1.0
    tissue = (0.35 + 0.45 * (1.0 - d)).astype(np.float32)  # denser toward the chest wall
    img = np.where(inside, tissue * top, background).astype(np.float32)
    skin = inside & (d > 0.93)
    img[skin] = 0.22 * top
    img += rng.normal(0.0, top * noise, size=img.shape).astype(np.float32)
    truth = PhantomTruth(breast_box=(0, int(cy - ry), int(rx) + 1, int(cy + ry) + 1))
    for _ in range(n_lesions):
        r = max(2, int(min(rows, cols) * 0.02))
        ly = int(rng.uniform(cy - ry * 0.5, cy + ry * 0.5))
        lx = int(rng.uniform(rx * 0.15, rx * 0.6))
        y0, y1, x0, x1 = ly - r, ly + r, lx - r, lx + r
        img[y0:y1, x0:x1] = np.maximum(img[y0:y1, x0:x1], 0.95 * top)
        truth.lesion_boxes.append((x0, y0, x1, y1))
    for k in range(n_labels):
        h = max(3, rows // 40)
        w = max(6, cols // 8)
        x0 = cols - w - max(2, cols // 30)
        y0 = max(2, rows // 30) + k * (rows - 2 * h - rows // 15)
        img[y0:y0 + h, x0:x0 + w] = top  # burned-in text: saturated white blocks
        img[y0 + h // 3:y0 + 2 * h // 3, x0 + w // 4:x0 + w // 2] = background
        truth.text_boxes.append((x0, y0, x0 + w, y0 + h))
    img = np.clip(img, 0, top).astype(np.uint16)
    if laterality == "R":
        img = np.ascontiguousarray(img[:, ::-1])
        flipx = lambda b: (cols - b[2], b[1], cols - b[0], b[3])  # noqa: E731
        truth = PhantomTruth(breast_box=flipx(truth.breast_box),
                             lesion_boxes=[flipx(b) for b in truth.lesion_boxes],
                             text_boxes=[flipx(b) for b in truth.text_boxes])
    return img, truth


def phantom_dataset(pixels: np.ndarray, *, laterality: str | None = "L", photometric: str = "MONOCHROME2",
                    bits_stored: int = 12, window: tuple[float, float] | None = None,
                    voi_function: str | None = None, intent: str = "FOR PRESENTATION",
                    rescale: tuple[float, float] | None = None) -> Dataset:
    """A minimal, valid MG For Presentation dataset around ``pixels`` (uncompressed)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MG_FOR_PRESENTATION
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[str(pixels.shape), str(int(pixels.sum()))])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MG"
    ds.PatientID = "PHANTOM"
    ds.PresentationIntentType = intent
    if laterality:
        ds.ImageLaterality = laterality
    ds.set_pixel_data(pixels, photometric, bits_stored)
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if voi_function:
        ds.VOILUTFunction = voi_function
    return ds


def write_phantom(path, rows: int = 512, cols: int = 400, laterality: str = "L", *, seed: int = 0,
                  photometric: str = "MONOCHROME2", bits_stored: int = 12, **kw) -> PhantomTruth:
    """Write one phantom file; MONOCHROME1 stores the inverted values, as such detectors do."""
    pixels, truth = phantom_pixels(rows, cols, laterality, seed=seed, bits_stored=bits_stored)
    if photometric == "MONOCHROME1":
        pixels = (2 ** bits_stored - 1 - pixels).astype(np.uint16)
    ds = phantom_dataset(pixels, laterality=laterality, photometric=photometric, bits_stored=bits_stored, **kw)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return truth
