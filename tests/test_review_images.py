"""Serving cache images: the 16-bit -> 8-bit mapping, downscaling, and the cache-folder fence."""

import cv2
import numpy as np
import pytest

from review_app.images import ImageUnavailable, preview_png, resolve_cache_path


def test_full_scale_maps_to_full_scale_and_a_step_of_257_to_one_grey_level(tmp_path):
    pixels = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "a.png"), pixels)
    out = cv2.imdecode(np.frombuffer(preview_png(tmp_path / "a.png", height=64), np.uint8), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint8 and out.tolist() == [[0, 1, 128, 255]]


def test_tall_images_are_downscaled_keeping_the_aspect_ratio(tmp_path):
    cv2.imwrite(str(tmp_path / "t.png"), np.full((400, 128), 40000, np.uint16))
    out = cv2.imdecode(np.frombuffer(preview_png(tmp_path / "t.png", height=100), np.uint8), cv2.IMREAD_UNCHANGED)
    assert out.shape == (100, 32) and int(out[50, 16]) == round(40000 / 257)


@pytest.mark.parametrize("cache_path, message", [
    ("../../etc/passwd", "outside the cache folder"),
    ("hmi/missing.png", "re-run preprocessing"),
    (None, "no preprocessed cache entry"),
])
def test_only_existing_files_inside_the_cache_are_served(tmp_path, cache_path, message):
    (tmp_path / "cache").mkdir()
    with pytest.raises(ImageUnavailable, match=message):
        resolve_cache_path(tmp_path / "cache", cache_path)
