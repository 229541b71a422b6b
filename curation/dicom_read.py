"""Header facts shared by the catalogue and the decoder: truncation, typed tag values, declared size.

pydicom answers a file cut short with a silently partial dataset (no exception, no warning), so
a cut file used to be reported as "no pixel data" or "not mammography". :func:`truncation` looks
at where the last parsed element ends: past the end of the file, inside an element header, or an
encapsulated Pixel Data without its closing delimiter all mean the transfer was interrupted.
"""

from __future__ import annotations

import os

from pydicom.dataset import Dataset

PIXEL_DATA_TAG = 0x7FE00010
_UNDEFINED = 0xFFFFFFFF
_SEQ_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"

# Largest FFDM detectors are ~4096 x 5625 (23 Mpixel); tomosynthesis-synthesised 2D is similar.
DEFAULT_MAX_PIXELS = 60_000_000


class HeaderValueError(ValueError):
    """A tag whose value cannot be what it claims (``NumberOfFrames='abc'``, ``Rows`` missing)."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


def tail_bytes(path: str | os.PathLike, n: int = 8) -> tuple[int, bytes]:
    """(file size, its last ``n`` bytes)."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - n))
        return size, fh.read(n)


def truncation(ds: Dataset, size: int, tail: bytes) -> str | None:
    """Why the file looks cut short, or None. Call before any element is accessed (raw elements
    still know their file offsets)."""
    end, last, undefined = 0, None, False
    for tag, elem in list(ds._dict.items()):
        tell, length = getattr(elem, "value_tell", None), getattr(elem, "length", None)
        if tell is None or length is None:
            continue
        if length == _UNDEFINED:
            if tell >= end:
                end, last, undefined = tell, tag, True
            continue
        if tell + length >= end:
            end, last, undefined = tell + length, tag, False
    if last is None:
        return "the file ends before the first data element" if len(ds._dict) == 0 else None
    if undefined:
        if last == PIXEL_DATA_TAG and not tail.endswith(_SEQ_DELIMITER):
            return "encapsulated Pixel Data has no closing sequence delimiter (file cut inside the pixel data)"
        return None
    if end > size:
        what = "Pixel Data" if last == PIXEL_DATA_TAG else f"element ({last >> 16:04X},{last & 0xFFFF:04X})"
        return f"{what} declares {end - size} more bytes than the file holds"
    if 0 < size - end < 8:
        return f"the file ends inside an element header ({size - end} stray bytes)"
    return None


def int_tag(ds: Dataset, keyword: str, default: int | None = None) -> int:
    """An integer tag, or ``default`` when absent/empty; a junk value raises HeaderValueError."""
    value = ds.get(keyword, None)
    if value is None or value == "" or (hasattr(value, "__len__") and not isinstance(value, (str, bytes))
                                        and len(value) == 0):
        if default is None:
            raise HeaderValueError("missing_image_size" if keyword in ("Rows", "Columns") else "bad_header_value",
                                   f"{keyword} is missing")
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise HeaderValueError("bad_header_value", f"{keyword}={str(value)[:40]!r} is not an integer") from None


def declared_pixels(ds: Dataset) -> int:
    """Rows x Columns x frames x samples, as the header declares (before any decoding)."""
    return (int_tag(ds, "Rows") * int_tag(ds, "Columns") * max(1, int_tag(ds, "NumberOfFrames", 1))
            * max(1, int_tag(ds, "SamplesPerPixel", 1)))


def check_pixel_budget(ds: Dataset, max_pixels: int) -> None:
    n = declared_pixels(ds)
    if n > max_pixels:
        raise HeaderValueError("too_large", f"header declares {n:,} pixels "
                                            f"({int_tag(ds, 'Rows')} x {int_tag(ds, 'Columns')}), "
                                            f"over the budget of {max_pixels:,}")
