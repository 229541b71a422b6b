"""Stored pixels out of a parsed dataset: pydicom's decoders, the GDCM fallback, decoder warnings.

Decoders that meet a corrupted stream often decode it anyway and only *say* so: pydicom's pixel
code through Python warnings, OpenJPEG/libjpeg on file descriptor 2. Both are captured while
decoding and raised as :class:`DecoderWarning` (quarantined as ``decoder_warning``), so a corrupted
image is never cached silently.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from curation.decode_gdcm import gdcm_decode, gdcm_handles
from curation.dicom_read import int_tag


class DecoderWarning(Exception):
    """The decoder produced pixels but warned about the stream."""


@contextlib.contextmanager
def _stderr_captured():
    """What native decoders print on file descriptor 2 while the block runs (list with one string)."""
    said: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:
        yield said
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            said.append(tmp.read(4096).decode("utf-8", "replace"))


def pixels(ds: Dataset) -> np.ndarray:
    """pydicom's decoders (pylibjpeg, pillow); GDCM only for 12-bit JPEG Extended
    (1.2.840.10008.1.2.4.51), which nothing else decodes (pydicom's own GDCM plugin refuses it)."""
    tsyntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
    if tsyntax == pydicom.uid.JPEGExtended12Bit and int_tag(ds, "BitsStored", 8) > 8 and gdcm_handles(tsyntax):
        return gdcm_decode(ds)
    native = _native_unsigned(ds, tsyntax)
    with warnings.catch_warnings(record=True) as caught, \
            (contextlib.nullcontext([]) if native else _stderr_captured()) as said:
        warnings.simplefilter("always")
        arr = _native_view(ds, tsyntax) if native else ds.pixel_array
    # OpenJPEG/libjpeg write their warnings to fd 2, pydicom's pixel code to Python warnings; header
    # value warnings (valuerep) are not decoder warnings and are left to the header checks
    said_py = [str(w.message) for w in caught if "pixels" in str(w.filename)]
    text = "; ".join(([said[0].strip()] if said and said[0].strip() else []) + said_py)
    if text:
        raise DecoderWarning(f"decoder reported: {text[:300]}")
    return arr


def _native_unsigned(ds: Dataset, tsyntax: str) -> bool:
    """Uncompressed little-endian, one unsigned 8/16-bit sample, one frame: pixels a view can serve
    (no native decoder runs, so nothing prints on file descriptor 2)."""
    return (tsyntax in (pydicom.uid.ExplicitVRLittleEndian, pydicom.uid.ImplicitVRLittleEndian)
            and "PixelData" in ds and int_tag(ds, "PixelRepresentation", 0) == 0
            and int_tag(ds, "SamplesPerPixel", 1) == 1 and int_tag(ds, "NumberOfFrames", 1) == 1
            and int_tag(ds, "BitsAllocated", 16) in (8, 16))


def _native_view(ds: Dataset, tsyntax: str) -> np.ndarray:
    """The same values as ``ds.pixel_array`` without its copy and two shift passes: a read-only view of
    Pixel Data (pydicom validates the length and shape as usual), masked to Bits Stored only when an
    unused high bit is actually set (overlay bits, some vendors' padding) — for unsigned values,
    pydicom's shift left-then-right is exactly that mask."""
    arr, _ = pydicom.pixels.get_decoder(tsyntax).as_array(ds, view_only=True, correct_unused_bits=False)
    bits_stored = int_tag(ds, "BitsStored", arr.dtype.itemsize * 8)
    if 0 < bits_stored < arr.dtype.itemsize * 8 and arr.size and int(arr.max()) >> bits_stored:
        arr = np.bitwise_and(arr, np.array((1 << bits_stored) - 1, dtype=arr.dtype))
    return arr


def _without_gdcm_plugin() -> None:
    """GDCM aborts the whole process (an uncaught C++ exception) on some corrupt JPEG 2000 / RLE
    streams (found by the fuzz run), so pydicom must never pick it: it is removed from pydicom's
    plugin lists and called directly only in the one case above."""
    from pydicom.pixels import decoders

    for name in dir(decoders):
        dec = getattr(decoders, name)
        if hasattr(dec, "remove_plugin") and "gdcm" in getattr(dec, "available_plugins", ()):
            dec.remove_plugin("gdcm")


_without_gdcm_plugin()
