"""Content-addressed cache of preprocessed images, and the index/quarantine schemas (defined once).

Why 16-bit PNG: lossless, every image viewer and ``tf.io.decode_png(dtype=uint16)`` read it,
and 65536 levels keep more than the 12-14 bits a detector stores. Value = round(x * 65535).
By default the zlib stream is stored uncompressed (``png_compression=0``): detector noise makes
16-bit rows nearly incompressible (level 1 saves ~20% and costs 7-10x the write time, more than
the whole rest of the pipeline at H = 2048); raise the level when disk matters more than time.
Level 0 is written by :mod:`curation.preprocess.png16` (one copy of the pixels, SIMD checksums),
higher levels by libpng; both decode to the same pixels (bench/README_preprocess.md has the times).

Layout, relative to the cache root (``$MAMMO_HOME/cache`` or the CLI's ``--out``)::

    <config_hash>/<sha256[:2]>/<sha256>.png    the image
    <config_hash>/<sha256[:2]>/<sha256>.json   its index fields (crop box, flip, ...)

The key is (sha256 of the input file, hash of the pixel-changing config), so the same file in two
batches is processed once, a changed config never reads a stale image, and a re-run finds
every result without decoding anything. Writes go to a temporary name and are renamed into
place, so concurrent workers and interrupted runs never leave a half-written image.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa

from curation.preprocess.png16 import write_png16
from curation.schemas import CACHE_INDEX_SCHEMA, CACHE_QUARANTINE_SCHEMA

INDEX_SCHEMA = CACHE_INDEX_SCHEMA
INDEX_COLUMNS = INDEX_SCHEMA.names

QUARANTINE_SCHEMA = CACHE_QUARANTINE_SCHEMA
QUARANTINE_COLUMNS = QUARANTINE_SCHEMA.names

# fields kept in the sidecar (everything in the index that depends only on content + config)
_SIDECAR_FIELDS = [c for c in INDEX_COLUMNS if c not in ("image_key", "file_key")]


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def cache_relpath(sha256: str, config_hash: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError("sha256 must be 64 lowercase hex digits")
    return f"{config_hash}/{sha256[:2]}/{sha256}.png"


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    _atomic_write(path, lambda fd: _write_all(fd, data))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _atomic_write(path: Path, write: Callable[[int], object]) -> None:
    """``write(fd)`` into a hidden temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            write(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def to_uint16(image01: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(image01, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)


def write_entry(root: Path, rel: str, image: np.ndarray, fields: dict, png_compression: int = 0) -> None:
    """Image first, sidecar last: a sidecar's presence means the entry is complete.
    ``image``: uint16 (x * 65535) as written, or float in [0, 1]."""
    pixels = image if image.dtype == np.uint16 else to_uint16(image)
    target = root / rel
    if png_compression == 0:  # stored deflate, no row filter: 2-3 ms instead of libpng's 6-8 (png16)
        _atomic_write(target, lambda fd: write_png16(fd, pixels))
    else:  # libpng; Sub filter + RLE: the best size/time trade on noisy 16-bit rows
        ok, png = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, int(png_compression),
                                                cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB,
                                                cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE])
        if not ok:
            raise OSError(f"PNG encoding failed for {rel}")
        _atomic_write(target, lambda fd: _write_all(fd, png.data))
    side = {k: fields[k] for k in _SIDECAR_FIELDS}
    _atomic_write_bytes(target.with_suffix(".json"), json.dumps(side, sort_keys=True).encode("utf-8"))


def read_entry(root: Path, rel: str) -> dict | None:
    """The cached index fields, or None when the entry is missing or incomplete."""
    png, side = root / rel, (root / rel).with_suffix(".json")
    if not (png.is_file() and side.is_file()):
        return None
    try:
        fields = json.loads(side.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return fields if all(k in fields for k in _SIDECAR_FIELDS) else None


def read_image(root: Path, rel: str) -> np.ndarray:
    """Cached image back as float32 in [0, 1]."""
    arr = cv2.imread(str(root / rel), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16:
        raise OSError(f"{rel} is not a 16-bit PNG")
    return arr.astype(np.float32) / 65535.0


def index_frame(rows: list[dict]) -> pd.DataFrame:
    table = pa.Table.from_pylist([{k: r.get(k) for k in INDEX_COLUMNS} for r in rows], schema=INDEX_SCHEMA)
    return table.to_pandas()


def quarantine_frame(rows: list[dict]) -> pd.DataFrame:
    table = pa.Table.from_pylist([{k: r.get(k) for k in QUARANTINE_COLUMNS} for r in rows], schema=QUARANTINE_SCHEMA)
    return table.to_pandas()


def write_parquet(df: pd.DataFrame, path: Path, schema: pa.Schema) -> None:
    """Deterministic bytes for the same rows, written atomically (:mod:`curation.parquet_io`)."""
    from curation.parquet_io import write_frame

    write_frame(df, schema, path)
