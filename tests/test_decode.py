"""Decoding: the grayscale chain of PS3.3 C.11 with hand-computed values, compressed syntaxes,
and every kind of bad input planted with pydicom and rejected with its reason code."""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import JPEG2000Lossless, RLELossless

from curation.decode import (REASONS, DecodeError, build_transform, decode, read_dicom, window_linear,
                             window_linear_exact, window_sigmoid)
from curation.preprocess.phantom import phantom_dataset, phantom_pixels, write_phantom


def _ramp(bits_stored=12):
    return (np.arange(64 * 64, dtype=np.uint16) % (2 ** bits_stored)).reshape(64, 64)


def _table_at(ds, value):
    return float(build_transform(ds).table[value])


# --- VOI functions, PS3.3 C.11.2.1.2 / C.11.2.1.3 ----------------------------------------------
def test_linear_window_matches_the_standards_formula_at_hand_computed_points():
    # c=100, w=11: below 94.5 -> 0, above 104.5 -> 1, else (x - 99.5)/10 + 0.5
    x = np.array([94, 94.5, 95, 99.5, 104, 104.5, 105])
    np.testing.assert_allclose(window_linear(x, 100, 11), [0, 0, 0.05, 0.5, 0.95, 1.0, 1.0], atol=1e-12)


def test_linear_exact_window_has_no_half_pixel_shift():
    x = np.array([95, 97.5, 100, 105, 105.01])
    np.testing.assert_allclose(window_linear_exact(x, 100, 10), [0, 0.25, 0.5, 1.0, 1.0], atol=1e-12)


def test_sigmoid_window_is_one_half_at_the_centre_and_follows_exp_minus_4():
    x = np.array([100.0, 105.0, 95.0])
    np.testing.assert_allclose(window_sigmoid(x, 100, 10),
                               [0.5, 1 / (1 + np.exp(-2)), 1 / (1 + np.exp(2))], atol=1e-12)


@pytest.mark.parametrize("func, width", [(window_linear, 0.5), (window_linear_exact, 0), (window_sigmoid, -1)])
def test_an_unusable_window_width_is_a_bad_voi_error(func, width):
    with pytest.raises(DecodeError) as err:
        func(np.array([1.0]), 100, width)
    assert err.value.reason_code == "bad_voi"


def test_the_header_window_function_is_honoured_and_the_first_of_several_values_is_used():
    ds = phantom_dataset(_ramp(), window=(0, 0))
    ds.WindowCenter = [100, 2000]
    ds.WindowWidth = [11, 50]
    assert _table_at(ds, 95) == pytest.approx(0.05, abs=1e-6)
    ds.VOILUTFunction = "LINEAR_EXACT"
    ds.WindowWidth = [10, 50]
    assert _table_at(ds, 100) == pytest.approx(0.5) and _table_at(ds, 98) == pytest.approx(0.3, abs=1e-6)
    ds.VOILUTFunction = "SIGMOID"
    assert _table_at(ds, 105) == pytest.approx(1 / (1 + np.exp(-2)), abs=1e-6)
    assert build_transform(ds).voi_source == "window:SIGMOID"


def test_modality_rescale_is_applied_before_the_window():
    # stored 150 -> 2*150 - 100 = 200 = the window centre of a LINEAR_EXACT window
    ds = phantom_dataset(_ramp(), window=(200, 20), voi_function="LINEAR_EXACT", rescale=(2, -100))
    assert _table_at(ds, 150) == pytest.approx(0.5)
    assert _table_at(ds, 145) == pytest.approx(0.0)  # 190 = c - w/2 -> 0
    assert _table_at(ds, 155) == pytest.approx(1.0)  # 210 = c + w/2 -> 1


def test_a_voi_lut_sequence_wins_over_the_window_and_clamps_outside_its_range():
    ds = phantom_dataset(_ramp(), window=(2048, 4096))
    item = Dataset()
    item.LUTDescriptor = [4, 10, 8]          # 4 entries, first mapped stored value 10, 8 bits
    item.LUTData = [0, 51, 102, 255]
    ds.VOILUTSequence = Sequence([item])
    tr = build_transform(ds)
    assert tr.voi_source == "voi_lut"
    assert [float(tr.table[v]) for v in (0, 10, 11, 12, 13, 4000)] == pytest.approx([0, 0, 0.2, 0.4, 1.0, 1.0])


def test_monochrome1_is_inverted_so_dense_tissue_is_bright():
    mono2 = phantom_dataset(_ramp(), window=(2048, 4096))
    mono1 = phantom_dataset(_ramp(), photometric="MONOCHROME1", window=(2048, 4096))
    t2, t1 = build_transform(mono2), build_transform(mono1)
    assert t1.inverted and not t2.inverted
    np.testing.assert_allclose(t1.table[:4096], 1.0 - t2.table[:4096], atol=1e-6)
    assert t1.table[0] == pytest.approx(1.0)  # the minimum stored value is displayed white


def test_a_monochrome1_phantom_decodes_to_the_same_picture_as_its_monochrome2_twin(tmp_path):
    write_phantom(tmp_path / "m2.dcm", 96, 80, "L", window=(2048, 4096))
    write_phantom(tmp_path / "m1.dcm", 96, 80, "L", photometric="MONOCHROME1", window=(2047, 4096))
    np.testing.assert_allclose(decode(tmp_path / "m1.dcm"), decode(tmp_path / "m2.dcm"), atol=2e-3)


def test_for_processing_images_get_the_documented_percentile_window():
    px, _ = phantom_pixels(128, 96, "L")
    ds = phantom_dataset(px, window=(10, 2), intent="FOR PROCESSING")  # a window meant for nobody
    tr = build_transform(ds, sample=px)
    assert tr.voi_source == "fallback:percentile_0.5_99.5"
    lo, hi = np.percentile(px, [0.5, 99.5])
    at_lo, at_hi = tr.apply(np.array([int(lo), int(np.ceil(hi))], dtype=np.uint16))
    assert at_lo == pytest.approx(0.0, abs=1e-3) and at_hi == pytest.approx(1.0)
    assert build_transform(ds, sample=px, for_processing="use_voi").voi_source == "window:LINEAR"


def test_signed_pixels_index_the_table_by_their_twos_complement_bit_pattern():
    px = np.array([[-100, 0], [100, 50]], dtype=np.int16).repeat(8, 0).repeat(8, 1)
    ds = phantom_dataset(px, window=(0, 200), voi_function="LINEAR_EXACT", bits_stored=16)
    out = build_transform(ds).apply(px)
    assert out[0, 0] == pytest.approx(0.0) and out[0, 8] == pytest.approx(0.5) and out[8, 0] == pytest.approx(1.0)


def test_decoded_pixels_are_float32_within_zero_and_one(tmp_path):
    write_phantom(tmp_path / "a.dcm", 96, 80, "L")  # no window: the percentile fallback
    out = decode(tmp_path / "a.dcm")
    assert out.dtype == np.float32 and out.min() >= 0.0 and out.max() <= 1.0 and out.max() > out.min()


# --- compressed transfer syntaxes ----------------------------------------------------------------
@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless], ids=["RLE", "JPEG2000-lossless"])
def test_lossless_compressed_files_decode_to_the_exact_stored_values(tmp_path, syntax):
    px, _ = phantom_pixels(128, 96, "R", seed=3)
    ds = phantom_dataset(px, laterality="R", window=(2048, 4096))
    ds.compress(syntax)
    ds.save_as(tmp_path / "c.dcm", enforce_file_format=True)
    img = read_dicom(tmp_path / "c.dcm")
    assert img.transfer_syntax == syntax and img.laterality == "R"
    np.testing.assert_array_equal(img.stored, px)


# --- bad input, each planted ---------------------------------------------------------------------
def _reason(path) -> str:
    with pytest.raises(DecodeError) as err, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        decode(path)
    assert err.value.reason_code in REASONS
    return err.value.reason_code


def test_pixel_data_shorter_than_the_header_promises_is_truncated(tmp_path):
    px, _ = phantom_pixels(96, 80, "L")
    ds = phantom_dataset(px)
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
    ds.save_as(tmp_path / "t.dcm", enforce_file_format=True)
    assert _reason(tmp_path / "t.dcm") == "truncated_pixel_data"


@pytest.mark.parametrize("syntax", [None, RLELossless, JPEG2000Lossless], ids=["native", "RLE", "J2K"])
def test_a_file_cut_in_the_middle_of_its_pixels_is_truncated(tmp_path, syntax):
    px, _ = phantom_pixels(96, 80, "L")
    ds = phantom_dataset(px)
    if syntax:
        ds.compress(syntax)
    ds.save_as(tmp_path / "full.dcm", enforce_file_format=True)
    data = (tmp_path / "full.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: len(data) - len(ds.PixelData) // 2])
    assert _reason(tmp_path / "cut.dcm") == "truncated_pixel_data"


@pytest.mark.parametrize("uid", ["1.2.840.10008.1.2.4.100", "1.2.3.4.5"], ids=["MPEG2", "private"])
def test_a_transfer_syntax_without_a_decoder_is_unsupported(tmp_path, uid):
    px, _ = phantom_pixels(96, 80, "L")
    ds = phantom_dataset(px)
    ds.compress(RLELossless)
    ds.file_meta.TransferSyntaxUID = uid
    pydicom.dcmwrite(tmp_path / "u.dcm", ds, little_endian=True, implicit_vr=False, enforce_file_format=True)
    assert _reason(tmp_path / "u.dcm") == "unsupported_transfer_syntax"


def test_a_multi_frame_tomosynthesis_volume_is_rejected(tmp_path):
    vol = np.stack([phantom_pixels(64, 48, "L", seed=s)[0] for s in range(3)])
    ds = phantom_dataset(vol)
    assert ds.NumberOfFrames == 3
    ds.save_as(tmp_path / "dbt.dcm", enforce_file_format=True)
    assert _reason(tmp_path / "dbt.dcm") == "multi_frame"


def test_an_rgb_screenshot_is_not_grayscale(tmp_path):
    rgb = np.zeros((64, 48, 3), dtype=np.uint8)
    rgb[10:40, 5:30] = (200, 30, 30)
    meta_ds = phantom_dataset(np.zeros((8, 8), np.uint16))
    meta_ds.set_pixel_data(rgb, "RGB", 8)
    meta_ds.save_as(tmp_path / "rgb.dcm", enforce_file_format=True)
    assert _reason(tmp_path / "rgb.dcm") == "not_grayscale"


def test_an_all_black_image_is_blank(tmp_path):
    ds = phantom_dataset(np.zeros((96, 80), np.uint16), window=(2048, 4096))
    ds.save_as(tmp_path / "black.dcm", enforce_file_format=True)
    assert _reason(tmp_path / "black.dcm") == "blank_image"


def test_a_text_file_is_not_dicom(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    assert _reason(tmp_path / "notes.txt") == "not_dicom"


def test_a_dataset_without_pixels_or_image_header_has_no_pixel_data(tmp_path):
    ds = phantom_dataset(np.zeros((8, 8), np.uint16))
    for kw in ("PixelData", "Rows", "Columns"):
        delattr(ds, kw)
    ds.save_as(tmp_path / "sr.dcm", enforce_file_format=True)
    assert _reason(tmp_path / "sr.dcm") == "no_pixel_data"


@pytest.mark.parametrize("name", ["MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm", "MR_small_RLE.dcm",
                                  "MR_small_bigendian.dcm"])
def test_jpeg_ls_and_other_syntaxes_from_pydicoms_own_files_decode_to_the_reference_values(name):
    # no JPEG-LS encoder is installed, so the codec is checked on pydicom's bundled lossless copies
    # of one signed 16-bit image against its uncompressed original
    from pydicom.data import get_testdata_file

    reference = read_dicom(get_testdata_file("MR_small.dcm")).stored
    np.testing.assert_array_equal(read_dicom(get_testdata_file(name)).stored, reference)
