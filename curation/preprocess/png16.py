"""Write a 16-bit grayscale PNG with an uncompressed ("stored") zlib stream, with one pass over the pixels.

The cache stores detector images whose noise makes 16-bit rows nearly incompressible, so it writes
them at zlib level 0 (see :mod:`curation.preprocess.cache`). At level 0 the whole cost of a PNG is
byte order, checksums and copies, and libpng (``cv2.imencode``/``cv2.imwrite``) spends ~4 ms on a
2048 x 1088 image that way. Here the pixels are copied once, into big-endian rows each led by the
"None" filter byte; the deflate stored blocks (RFC 1951 §3.2.4: a 5-byte header, then up to
65,535 literal bytes) are views into those rows, handed to one ``os.writev`` with the headers
between them, so nothing is copied again; adler32 (RFC 1950) and the chunk CRC (PNG §5.3) come from
zlib-ng, whose SIMD checksums take ~0.1 ms instead of ~2 ms for stdlib zlib's on the same 4.4 MB.

The file is a plain PNG (PNG §11.2.2: IHDR bit depth 16, colour type 0, no interlace; one IDAT;
IEND): every decoder reads it — ``tf.io.decode_png(dtype=tf.uint16)``, OpenCV, Pillow, browsers —
to the same pixels libpng's own writer gives. Same pixels in, same bytes out.
"""

from __future__ import annotations

import os
import struct

import numpy as np
from zlib_ng import zlib_ng

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_STORED_MAX = 65535                 # RFC 1951 §3.2.4: LEN is 16 bits
_ZLIB_HEADER = b"\x78\x01"          # RFC 1950: deflate, 32 KiB window, FLEVEL 0; (0x7801 % 31 == 0)
_IOV_MAX = 1024                     # POSIX minimum for writev's vector count on Linux


def _crc(data, crc: int = 0) -> int:
    return zlib_ng.crc32(data, crc) & 0xFFFFFFFF


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", _crc(data, _crc(kind)))


def png16_pieces(image: np.ndarray) -> list:
    """The PNG file as a list of bytes-like pieces (views into one copy of the pixel rows)."""
    if image.dtype != np.uint16 or image.ndim != 2 or 0 in image.shape:
        raise ValueError(f"png16 writes a non-empty 2-D uint16 array, not {image.dtype} {image.shape}")
    h, w = image.shape
    rows = np.empty((h, 1 + 2 * w), np.uint8)
    rows[:, 0] = 0                              # filter type None on every row (PNG §9.2)
    rows[:, 1:].view(">u2")[:] = image          # PNG stores samples most significant byte first (§7.1)
    raw = memoryview(rows).cast("B")
    n = len(raw)
    stream: list = [_ZLIB_HEADER]
    for start in range(0, n, _STORED_MAX):
        size = min(_STORED_MAX, n - start)
        stream.append(struct.pack("<BHH", int(start + size == n), size, size ^ 0xFFFF))  # BFINAL on the last
        stream.append(raw[start:start + size])
    stream.append(struct.pack(">I", zlib_ng.adler32(raw) & 0xFFFFFFFF))
    crc, length = _crc(b"IDAT"), 0
    for piece in stream:
        crc, length = _crc(piece, crc), length + len(piece)
    head = _SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0))
    return [head + struct.pack(">I", length) + b"IDAT", *stream, struct.pack(">I", crc) + _chunk(b"IEND", b"")]


def encode_png16(image: np.ndarray) -> bytes:
    """The PNG file in memory (one more copy; :func:`write_png16` avoids it)."""
    return b"".join(png16_pieces(image))


def write_png16(fd: int, image: np.ndarray) -> None:
    """Write the PNG of ``image`` to the open file descriptor ``fd`` (left open)."""
    views = [memoryview(p).cast("B") for p in png16_pieces(image)]
    i = 0
    while i < len(views):
        done = os.writev(fd, views[i:i + _IOV_MAX])
        if done == 0:
            raise OSError("writev wrote nothing")
        while i < len(views) and done >= len(views[i]):  # a short write resumes mid-piece
            done -= len(views[i])
            i += 1
        if done:
            views[i] = views[i][done:]
