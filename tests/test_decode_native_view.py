"""Uncompressed unsigned pixels are served as a view of Pixel Data, masked to Bits Stored only when
an unused high bit is set: always exactly the values ``ds.pixel_array`` gives (its copy + two shifts)."""

from __future__ import annotations

import numpy as np
import pydicom
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset, FileMetaDataset

from curation.decode_pixels import _native_unsigned, pixels


def _dataset(values: np.ndarray, bits_allocated: int, bits_stored: int, syntax) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.Rows, ds.Columns = values.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits_allocated, bits_stored, bits_stored - 1
    ds.PixelRepresentation, ds.SamplesPerPixel, ds.PhotometricInterpretation = 0, 1, "MONOCHROME2"
    ds.PixelData = values.tobytes() + (b"\0" if values.nbytes % 2 else b"")
    return ds


@settings(max_examples=150, deadline=None)
@given(bits_allocated=st.sampled_from([8, 16]), data=st.data(),
       syntax=st.sampled_from([pydicom.uid.ExplicitVRLittleEndian, pydicom.uid.ImplicitVRLittleEndian]),
       rows=st.integers(1, 23), cols=st.integers(1, 23), high_bits_garbage=st.booleans(), seed=st.integers(0, 2**31))
def test_native_pixels_equal_pydicoms_pixel_array_whatever_the_unused_high_bits_hold(
        bits_allocated, data, syntax, rows, cols, high_bits_garbage, seed):
    bits_stored = data.draw(st.integers(1, bits_allocated))
    dtype = np.uint8 if bits_allocated == 8 else np.uint16
    values = np.random.default_rng(seed).integers(0, 1 << bits_allocated, (rows, cols)).astype(dtype)
    if not high_bits_garbage:
        values &= dtype((1 << bits_stored) - 1)
    ds = _dataset(values, bits_allocated, bits_stored, syntax)
    assert _native_unsigned(ds, str(syntax))
    expected = _dataset(values, bits_allocated, bits_stored, syntax).pixel_array
    got = pixels(ds)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert np.array_equal(got, expected)


def test_a_view_is_served_without_a_copy_when_no_unused_bit_is_set():
    values = np.arange(12 * 10, dtype=np.uint16).reshape(12, 10) % 4096
    ds = _dataset(values, 16, 12, pydicom.uid.ExplicitVRLittleEndian)
    got = pixels(ds)
    assert not got.flags.writeable and np.shares_memory(got, np.frombuffer(ds.PixelData, np.uint8))


def test_signed_or_compressed_pixels_still_go_through_pydicoms_own_path():
    values = np.zeros((4, 4), np.uint16)
    signed = _dataset(values, 16, 12, pydicom.uid.ExplicitVRLittleEndian)
    signed.PixelRepresentation = 1
    assert not _native_unsigned(signed, pydicom.uid.ExplicitVRLittleEndian)
    assert not _native_unsigned(_dataset(values, 16, 12, pydicom.uid.RLELossless), pydicom.uid.RLELossless)
    big = _dataset(values, 16, 12, pydicom.uid.ExplicitVRBigEndian)
    assert not _native_unsigned(big, pydicom.uid.ExplicitVRBigEndian)
