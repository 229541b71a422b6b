"""The cache's own 16-bit PNG writer: the trainer's reader (tf.io.decode_png), OpenCV and Pillow decode
it to exactly the pixels libpng's writer gives (the format the contract names), at every size the
stored-block layout can meet, and the same pixels always give the same bytes."""

from __future__ import annotations

import io
import os
import struct
import zlib

import cv2
import numpy as np
import pytest

from curation.preprocess import cache as C
from curation.preprocess.config import PreprocessConfig
from curation.preprocess.phantom import write_phantom
from curation.preprocess.png16 import encode_png16, write_png16

# (1, 1); one row; a stream of exactly one full stored block (32767 px * 2 + 1 = 65535 bytes);
# one byte past it; odd widths; a full-height cache image of the benchmark's shape
SHAPES = [(1, 1), (1, 7), (1, 32767), (1, 32768), (3, 5), (17, 1000), (64, 128), (2048, 1088)]


def _pixels(shape, seed=0) -> np.ndarray:
    img = np.random.default_rng(seed).integers(0, 65536, shape, dtype=np.uint16)
    img.flat[0], img.flat[-1] = 0, 65535  # both ends of the range, where a byte-order slip shows
    return img


def _libpng(img: np.ndarray) -> np.ndarray:
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 0])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


@pytest.mark.parametrize("shape", SHAPES)
def test_opencv_decodes_the_same_pixels_libpng_would_have_written(shape):
    img = _pixels(shape)
    back = cv2.imdecode(np.frombuffer(encode_png16(img), np.uint8), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and back.shape == shape
    assert np.array_equal(back, img) and np.array_equal(back, _libpng(img))


def test_the_trainers_reader_tf_decode_png_gets_the_same_uint16_pixels():
    tf = pytest.importorskip("tensorflow")
    for shape in SHAPES:
        img = _pixels(shape, seed=1)
        back = tf.io.decode_png(encode_png16(img), channels=1, dtype=tf.uint16).numpy()[..., 0]
        assert np.array_equal(back, img), shape


def test_pillow_reads_it_as_a_16_bit_grey_image():
    from PIL import Image

    img = _pixels((40, 300), seed=2)
    with Image.open(io.BytesIO(encode_png16(img))) as im:
        assert im.mode in ("I;16", "I;16B", "I") and np.array_equal(np.asarray(im).astype(np.uint16), img)


def test_the_file_is_png_with_valid_checksums_a_strict_reader_checks():
    """Signature, IHDR (16-bit grey), CRC of every chunk and the zlib stream's adler32, read by hand."""
    data = encode_png16(_pixels((5, 40000), seed=3))  # 400,005 bytes of rows: 7 stored blocks
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, kinds, idat = 8, [], b""
    while pos < len(data):
        (n,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body, crc = data[pos + 8:pos + 8 + n], struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        assert crc == zlib.crc32(kind + body), kind
        kinds.append(kind)
        idat += body if kind == b"IDAT" else b""
        pos += 12 + n
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]
    assert struct.unpack(">IIBBBBB", data[16:29]) == (40000, 5, 16, 0, 0, 0, 0)
    rows = zlib.decompress(idat)  # checks the adler32 too
    assert len(rows) == 5 * (1 + 2 * 40000) and rows[0::80001] == b"\x00" * 5


def test_the_same_pixels_always_give_the_same_bytes(tmp_path):
    img = _pixels((300, 2000), seed=4)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    for p in (a, b):
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            write_png16(fd, img)
        finally:
            os.close(fd)
    assert a.read_bytes() == b.read_bytes() == encode_png16(img.copy())


def test_anything_but_a_2d_uint16_array_is_refused():
    for bad in (np.zeros((4, 4), np.uint8), np.zeros((4, 4, 1), np.uint16), np.zeros((0, 4), np.uint16)):
        with pytest.raises(ValueError, match="uint16"):
            encode_png16(bad)


@pytest.mark.parametrize("level", [0, 1])
def test_a_cache_entry_reads_back_as_the_preprocessed_pixels_at_any_level(tmp_path, level):
    """What the runner writes: the phantom through the pipeline, read by the cache reader and by tf."""
    from curation.decode import read_dicom
    from curation.preprocess.steps import preprocess

    write_phantom(tmp_path / "a.dcm", 640, 512, "R", seed=5, bits_stored=14, window=(8192, 16384))
    res = preprocess(read_dicom(str(tmp_path / "a.dcm")), PreprocessConfig(height=256, mask_height=128))
    fields = dict.fromkeys(C._SIDECAR_FIELDS, 1)
    C.write_entry(tmp_path, "x/a.png", res.image16, fields, png_compression=level)
    assert np.array_equal(cv2.imread(str(tmp_path / "x/a.png"), cv2.IMREAD_UNCHANGED), res.image16)
    assert np.array_equal(C.read_image(tmp_path, "x/a.png"), res.image16.astype(np.float32) / 65535.0)
    assert C.read_entry(tmp_path, "x/a.png") == fields
    assert not [p for p in (tmp_path / "x").iterdir() if p.name.startswith(".")]  # no temporary left
