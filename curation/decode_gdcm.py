"""GDCM fallback decoder (``python-gdcm``) for what pylibjpeg and pillow cannot decode.

The case that matters in older archives is 12-bit JPEG Extended (1.2.840.10008.1.2.4.51): pillow
and pylibjpeg-libjpeg refuse it, and pydicom's own GDCM plugin refuses it too, although GDCM's
bundled 12-bit libjpeg decodes it. So the frame is handed to GDCM directly, without a file (the
dataset is already parsed, and this also works for in-memory datasets).
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames

try:
    import gdcm

    HAVE_GDCM = True
except ImportError:  # optional at import time; pyproject installs it
    HAVE_GDCM = False

# Only the JPEG family is handed to GDCM: its RLE codec aborts the whole process (an uncaught C++
# exception, seen in the fuzz run) on a corrupt stream, where pydicom's RLE decoder raises cleanly.
_SYNTAXES = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"}


def gdcm_handles(transfer_syntax: str) -> bool:
    return HAVE_GDCM and str(transfer_syntax) in _SYNTAXES


def gdcm_decode(ds: Dataset) -> np.ndarray:
    """The single grayscale frame of ``ds`` as (rows, cols) uint8/uint16 (int16 when signed)."""
    if not HAVE_GDCM:
        raise NotImplementedError("python-gdcm is not installed")
    rows, cols = int(ds.Rows), int(ds.Columns)
    bits_alloc, bits_stored = int(ds.BitsAllocated), int(ds.get("BitsStored", ds.BitsAllocated))
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    fragment = gdcm.Fragment()
    fragment.SetByteStringValue(frame)
    fragments = gdcm.SequenceOfFragments.New()
    fragments.AddFragment(fragment)
    elem = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
    elem.SetValue(fragments.__ref__())
    img = gdcm.Image()
    img.SetNumberOfDimensions(2)
    img.SetDimensions((cols, rows, 1))
    img.SetDataElement(elem)
    pi = gdcm.PhotometricInterpretation.GetPIType(str(ds.PhotometricInterpretation))
    img.SetPhotometricInterpretation(gdcm.PhotometricInterpretation(pi))
    ts = gdcm.TransferSyntax.GetTSType(str(ds.file_meta.TransferSyntaxUID))
    img.SetTransferSyntax(gdcm.TransferSyntax(ts))
    img.SetPixelFormat(gdcm.PixelFormat(1, bits_alloc, bits_stored, bits_stored - 1, int(signed)))
    buf = img.GetBuffer()
    if buf is None:
        raise RuntimeError("GDCM could not decode the frame")
    raw = buf.encode("utf-8", "surrogateescape")
    dtype = {8: np.int8 if signed else np.uint8, 16: np.int16 if signed else np.uint16}[bits_alloc]
    need = rows * cols * np.dtype(dtype).itemsize
    if len(raw) < need:
        raise ValueError(f"GDCM returned {len(raw)} bytes, {need} expected (truncated codestream)")
    arr = np.frombuffer(raw[:need], dtype=dtype).reshape(rows, cols).copy()
    if not signed and 0 < bits_stored < bits_alloc:
        arr &= (1 << bits_stored) - 1
    return arr
