"""The paper's preprocessing steps, one test per idea, plus property tests for the arithmetic
and for arbitrary junk input."""

from __future__ import annotations

import hashlib
import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from curation.decode import REASONS, DecodeError, stored_from_dataset
from curation.preprocess.config import PreprocessConfig
from curation.preprocess.phantom import phantom_dataset, phantom_pixels
from curation.preprocess.steps import (decide_flip, downsample, estimate_background, flip_horizontal, largest_component,
                                       pad_width_right, padded_width, preprocess, resize_to_height, resized_width,
                                       scale_box, tissue_side)

SMALL = PreprocessConfig(height=128, mask_height=128)


def _stored(laterality="L", rows=256, cols=200, tag="same", seed=0, **kw):
    px, truth = phantom_pixels(rows, cols, laterality, seed=seed)
    ds = phantom_dataset(px, laterality=laterality if tag == "same" else tag, window=(2048, 4096), **kw)
    return stored_from_dataset(ds), truth


# --- flip and orientation -------------------------------------------------------------------------
def test_flip_mirrors_columns_and_keeps_rows():
    a = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(flip_horizontal(a), [[2, 1, 0], [5, 4, 3]])


def test_tissue_side_is_where_the_mass_is_and_undecided_near_the_centre():
    m = np.zeros((10, 20), np.uint8)
    m[:, :6] = 1
    assert tissue_side(m, 0.04) == "left"
    assert tissue_side(m[:, ::-1], 0.04) == "right"
    m2 = np.zeros((10, 20), np.uint8)
    m2[:, 9:11] = 1
    assert tissue_side(m2, 0.04) is None


@pytest.mark.parametrize("tag, side, expected", [
    ("L", "left", (False, "L", False)), ("R", "right", (True, "R", False)),
    ("L", "right", (True, "R", True)), ("R", "left", (False, "L", True)),
    (None, "right", (True, "R", False)), ("R", None, (True, None, False)), (None, None, (False, None, False)),
])
def test_the_pixels_decide_the_flip_and_a_contradicting_tag_is_flagged(tag, side, expected):
    assert decide_flip(tag, side) == expected


@pytest.mark.parametrize("laterality", ["L", "R"])
def test_every_output_has_the_chest_wall_at_the_left_edge(laterality):
    img, _ = _stored(laterality)
    res = preprocess(img, SMALL)
    assert res.flipped == (laterality == "R") and not res.orientation_disagreement
    content = res.image[:, : res.content_width]
    left, right = content[:, : res.content_width // 4].sum(), content[:, -res.content_width // 4:].sum()
    assert left > 2 * right


def test_a_right_breast_gives_exactly_the_output_of_its_mirror_image_stored_as_a_left_breast():
    px, _ = phantom_pixels(256, 200, "L", seed=5)
    left = stored_from_dataset(phantom_dataset(px, laterality="L", window=(2048, 4096)))
    right = stored_from_dataset(phantom_dataset(np.ascontiguousarray(px[:, ::-1]), laterality="R",
                                                window=(2048, 4096)))
    a, b = preprocess(left, SMALL), preprocess(right, SMALL)
    assert b.flipped and not a.flipped
    assert b.crop == (200 - a.crop[2], a.crop[1], 200 - a.crop[0], a.crop[3])
    assert np.abs(a.image16.astype(int) - b.image16.astype(int)).max() <= 1


def test_a_wrong_laterality_tag_is_flagged_and_the_pixels_are_trusted():
    img, _ = _stored("R", tag="L")  # a right breast labelled L
    res = preprocess(img, SMALL)
    assert res.flipped and res.orientation_disagreement
    assert (res.laterality_tag, res.laterality_pixels) == ("L", "R")


def test_a_catalogue_laterality_overrides_the_header():
    img, _ = _stored("R", tag=None)
    res = preprocess(img, SMALL, laterality="L")
    assert res.laterality_tag == "L" and res.orientation_disagreement


# --- background and largest component ------------------------------------------------------------
def test_background_threshold_sits_between_a_non_zero_background_and_the_tissue():
    small = np.full((50, 50), 0.04, np.float32)
    small[10:40, :25] = 0.6
    bg = estimate_background(small, 0.3)
    assert bg.level == pytest.approx(0.04, abs=0.01)
    assert 0.04 < bg.threshold < bg.otsu <= 0.6


def test_largest_component_keeps_the_breast_and_drops_a_planted_label():
    mask = np.zeros((40, 40), np.uint8)
    mask[5:35, 0:18] = 1       # breast against the chest wall
    mask[2:5, 30:38] = 1       # burned-in label, not touching it
    comp = largest_component(mask)
    assert comp.n_objects == 2 and comp.box == (0, 5, 18, 35)
    assert comp.mask[3, 33] == 0 and comp.mask[20, 5] == 1
    assert largest_component(np.zeros((5, 5), np.uint8)) is None


def test_burned_in_labels_are_zeroed_and_lesions_stay_inside_the_crop():
    img, truth = _stored("R", rows=320, cols=256, seed=4)
    res = preprocess(img, SMALL)
    x0, y0, x1, y1 = res.crop
    for lx0, ly0, lx1, ly1 in truth.lesion_boxes:
        assert x0 <= lx0 and y0 <= ly0 and lx1 <= x1 and ly1 <= y1
    for tx0, ty0, tx1, ty1 in truth.text_boxes:  # labels sit outside the box or are zeroed inside it
        assert tx1 <= x0 or tx0 >= x1 or ty1 <= y0 or ty0 >= y1
    assert res.n_objects >= 3  # breast + two labels were seen, then removed


def test_a_label_inside_the_breasts_bounding_box_is_zeroed():
    px, _ = phantom_pixels(320, 256, "L", seed=2, n_labels=0)
    px[40:50, 100:130] = 4095    # beside the upper breast edge (x ~ 62 there), inside its box (x < 141)
    ds = phantom_dataset(px, window=(2048, 4096))
    res = preprocess(stored_from_dataset(ds), PreprocessConfig(height=320, mask_height=320))
    x0, y0, x1, y1 = res.crop
    assert x0 <= 100 and 130 <= x1 and y0 <= 40 and 50 <= y1, "the label lies inside the crop box"
    sy, sx = 320 / (y1 - y0), res.content_width / (x1 - x0)
    label = res.image[int((42 - y0) * sy):int((48 - y0) * sy), int((104 - x0) * sx):int((126 - x0) * sx)]
    assert label.size and label.max() == 0.0


# --- geometry --------------------------------------------------------------------------------------
def test_padding_arithmetic_on_hand_picked_widths():
    assert [padded_width(w, 64) for w in (1, 63, 64, 65, 128, 1575)] == [64, 64, 64, 128, 128, 1600]
    out = pad_width_right(np.ones((2, 65), np.float32), 64)
    assert out.shape == (2, 128) and out[:, :65].all() and not out[:, 65:].any()


@given(w=st.integers(1, 5000), m=st.integers(1, 256))
def test_padded_width_is_the_smallest_multiple_not_below_the_width(w, m):
    p = padded_width(w, m)
    assert p % m == 0 and p >= w and p - m < max(w, 1) or p == m


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 300), w=st.integers(1, 300), H=st.integers(1, 300))
def test_resize_keeps_the_aspect_ratio_within_half_a_pixel(h, w, H):
    out = resize_to_height(np.ones((h, w), np.float32), H)
    assert out.shape == (H, resized_width(h, w, H))
    assert abs(out.shape[1] - w * H / h) <= 0.5 or out.shape[1] == 1


@given(rows=st.integers(8, 400), cols=st.integers(8, 400), k=st.integers(1, 8), data=st.data())
def test_a_scaled_box_covers_the_mask_box_exactly_and_reaches_the_edge_it_touches(rows, cols, k, data):
    small = (max(1, rows // k), max(1, cols // k))
    full = (small[0] * k + data.draw(st.integers(0, k - 1)), small[1] * k + data.draw(st.integers(0, k - 1)))
    x0 = data.draw(st.integers(0, small[1] - 1))
    y0 = data.draw(st.integers(0, small[0] - 1))
    x1 = data.draw(st.integers(x0 + 1, small[1]))
    y1 = data.draw(st.integers(y0 + 1, small[0]))
    X0, Y0, X1, Y1 = scale_box((x0, y0, x1, y1), k, small, full)
    assert (X0, Y0) == (x0 * k, y0 * k)
    assert X1 == (full[1] if x1 == small[1] else x1 * k) and Y1 == (full[0] if y1 == small[0] else y1 * k)
    assert 0 <= X0 < X1 <= full[1] and 0 <= Y0 < Y1 <= full[0]


def test_downsampling_uses_an_integer_factor_and_at_least_the_mask_height():
    small, k = downsample(np.ones((3328, 2560), np.uint16), 512)
    assert k == 6 and small.shape == (554, 426)
    same, one = downsample(np.ones((100, 80), np.uint16), 512)
    assert one == 1 and same.shape == (100, 80)


def test_output_height_and_padded_width_follow_the_config():
    img, _ = _stored("L", rows=300, cols=230)
    res = preprocess(img, PreprocessConfig(height=96, mask_height=128, pad_multiple=32))
    assert res.image.shape[0] == 96 and res.image.shape[1] % 32 == 0 and res.image.dtype == np.float32
    assert res.image.min() == 0.0 and not res.image[:, res.content_width:].any()


def test_intensities_keep_the_voi_scale_unless_minmax_is_asked_for():
    px, _ = phantom_pixels(256, 200, "L", seed=0, n_lesions=0, n_labels=0)
    px[100:140, 20:60] = 3900                      # the brightest tissue: LINEAR window (2048, 4096)
    ds = phantom_dataset(px, window=(2048, 4096))  # -> (3900 - 2047.5) / 4095 + 0.5 = 0.95238
    img = stored_from_dataset(ds)
    plain = preprocess(img, PreprocessConfig(height=256, mask_height=256))
    stretched = preprocess(img, PreprocessConfig(height=256, mask_height=256, intensity_rescale="minmax"))
    assert plain.image.max() == pytest.approx(0.95238, abs=1e-4)
    assert stretched.image.max() == 1.0


# --- bad images ------------------------------------------------------------------------------------
def test_a_tiny_image_is_too_small():
    img, _ = _stored("L", rows=40, cols=30)
    with pytest.raises(DecodeError) as err:
        preprocess(img, SMALL)
    assert err.value.reason_code == "too_small"


def test_pure_noise_without_an_object_is_no_breast():
    rng = np.random.default_rng(0)
    px = rng.integers(0, 4096, size=(200, 160), dtype=np.uint16)
    ds = phantom_dataset(px, window=(2048, 4096))
    with pytest.raises(DecodeError) as err:
        preprocess(stored_from_dataset(ds), SMALL)
    assert err.value.reason_code == "no_breast"


def test_only_a_burned_in_label_on_an_empty_detector_is_no_breast():
    px = np.full((256, 200), 40, np.uint16)
    px[10:20, 150:190] = 4095
    ds = phantom_dataset(px, window=(2048, 4096))
    with pytest.raises(DecodeError) as err:
        preprocess(stored_from_dataset(ds), SMALL)
    assert err.value.reason_code == "no_breast"


@settings(max_examples=30, deadline=None)
@given(data=st.binary(min_size=0, max_size=64 * 64 * 2), rows=st.integers(1, 64), cols=st.integers(1, 64))
def test_random_junk_pixels_either_preprocess_or_fail_with_a_known_reason(data, rows, cols):
    raw = (data + b"\0" * (rows * cols * 2))[: rows * cols * 2]
    px = np.frombuffer(raw, dtype=np.uint16).reshape(rows, cols) & 0x0FFF
    ds = phantom_dataset(px, window=(2048, 4096))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = preprocess(stored_from_dataset(ds), PreprocessConfig(height=64, mask_height=64, min_size=8))
        except DecodeError as exc:
            assert exc.reason_code in REASONS
        else:
            assert res.image.shape[0] == 64 and res.image.shape[1] % 64 == 0
            assert 0.0 <= res.image.min() and res.image.max() <= 1.0


# --- config --------------------------------------------------------------------------------------
def test_the_config_hash_is_stable_and_changes_only_with_pixel_changing_fields():
    a = PreprocessConfig(height=256)
    blob = json.dumps(a.pixel_fields(), sort_keys=True, separators=(",", ":"))
    assert a.config_hash == hashlib.sha256(blob.encode()).hexdigest()[:16]
    assert PreprocessConfig(height=256, png_compression=6).config_hash == a.config_hash
    assert PreprocessConfig(height=512).config_hash != a.config_hash


def test_a_bad_config_field_fails_fast_and_names_the_field():
    with pytest.raises(ValidationError, match="height"):
        PreprocessConfig(height=0)
    with pytest.raises(ValidationError, match="heigth"):
        PreprocessConfig(heigth=256)


# --- a breast that fills the detector (no background on one or every side) --------------------------
def _filling_pixels(rows=256, cols=200, seed=0, background_cols=0, paddle_corner=False):
    import cv2
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:cols]
    texture = cv2.GaussianBlur(rng.normal(0, 1, (rows, cols)), (0, 0), 8) * 2000
    px = 1500 + 900 * (1 - xx / cols) + texture + rng.normal(0, 40, (rows, cols))
    if background_cols:
        px[:, cols - background_cols:] = 60 + rng.normal(0, 10, (rows, background_cols))
    if paddle_corner:
        px[(xx + yy) < 40] = 3900
    return np.clip(px, 0, 4095).astype(np.uint16)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_breast_filling_the_whole_detector_is_processed_not_rejected(seed):
    ds = phantom_dataset(_filling_pixels(seed=seed), window=(2048, 4096))
    res = preprocess(stored_from_dataset(ds), SMALL)
    assert res.crop == (0, 0, 200, 256) and res.breast_fraction == 1.0
    assert res.image.max() > 0


def test_a_magnified_spot_view_with_a_paddle_corner_is_processed_not_no_breast():
    ds = phantom_dataset(_filling_pixels(paddle_corner=True), window=(2048, 4096))
    assert preprocess(stored_from_dataset(ds), SMALL).image16.shape[0] == SMALL.height


def test_background_on_one_side_only_is_cropped_away():
    ds = phantom_dataset(_filling_pixels(background_cols=60), window=(2048, 4096))
    res = preprocess(stored_from_dataset(ds), SMALL)
    assert res.crop[2] <= 200 - 60 + 8 and res.crop[0] == 0  # the 60 background columns are gone


def test_a_flat_field_with_a_heel_effect_gradient_is_still_no_breast():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:256, 0:200]
    px = np.clip(2000 + 400 * xx / 200 + rng.normal(0, 40, (256, 200)), 0, 4095).astype(np.uint16)
    with pytest.raises(DecodeError) as err:
        preprocess(stored_from_dataset(phantom_dataset(px, window=(2048, 4096))), SMALL)
    assert err.value.reason_code == "no_breast"
