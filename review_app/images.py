"""Serve the preprocessed 16-bit cache PNG as a small 8-bit PNG a browser can show.

The cache stores x in [0, 1] as round(x * 65535); dividing by 257 maps 65535 -> 255 exactly,
so the preview is the same linear intensity mapping the network sees, only coarser.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


class ImageUnavailable(LookupError):
    pass


def resolve_cache_path(cache_root: Path, cache_path: str | None) -> Path:
    """``cache_root / cache_path``, refusing anything that escapes the cache folder."""
    if not cache_path:
        raise ImageUnavailable("this image has no preprocessed cache entry (not preprocessed or quarantined)")
    root = Path(cache_root).resolve()
    path = (root / cache_path).resolve()
    if not path.is_relative_to(root):
        raise ImageUnavailable("cache path points outside the cache folder")
    if not path.is_file():
        raise ImageUnavailable(f"cached image {cache_path} is missing; re-run preprocessing for its batch")
    return path


def preview_png(path: Path, height: int) -> bytes:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageUnavailable(f"{path.name} is not a readable PNG")
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return preview_from_pixels(image, height, path.name)


def preview_from_pixels(image: np.ndarray, height: int, name: str = "image") -> bytes:
    """The 8-bit preview PNG of decoded cache pixels (one decode serves preview and viewer)."""
    if image.dtype == np.uint16:
        image = np.round(image.astype(np.float32) / 257.0).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageUnavailable(f"{name}: unexpected pixel type {image.dtype}")
    h, w = image.shape
    if h > height:
        new_w = max(1, round(w * height / h))
        image = cv2.resize(image, (new_w, height), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ImageUnavailable(f"{name}: PNG encoding failed")
    return buf.tobytes()
