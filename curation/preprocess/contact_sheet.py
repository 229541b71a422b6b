"""Before/after contact sheet: each row shows the decoded original (crop box drawn in green,
right breasts as stored) next to the cached network input, so a person sees at a glance that
labels were removed, nothing was cut off and every breast faces the same way."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from curation.decode import read_dicom
from curation.preprocess.cache import read_image
from curation.preprocess.steps import downsample


def _gray_to_bgr(img01: np.ndarray) -> np.ndarray:
    u8 = np.clip(img01 * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(u8, cv2.COLOR_GRAY2BGR)


def _fit(img: np.ndarray, height: int) -> np.ndarray:
    h, w = img.shape[:2]
    return cv2.resize(img, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)


def render(pairs: list[tuple[str, dict]], cache_root: str | Path, out_png: str | Path, tile_height: int = 200) -> Path:
    """``pairs``: (DICOM path, index row) for each example; writes an 8-bit PNG and returns its path."""
    rows = []
    for dicom_path, row in pairs:
        img = read_dicom(dicom_path)
        small, _ = downsample(img.stored, tile_height * 2)
        before = _gray_to_bgr(img.transform(small).apply(small))
        sy = small.shape[0] / img.stored.shape[0]
        sx = small.shape[1] / img.stored.shape[1]
        p0 = (int(row["crop_x0"] * sx), int(row["crop_y0"] * sy))
        p1 = (int(row["crop_x1"] * sx) - 1, int(row["crop_y1"] * sy) - 1)
        cv2.rectangle(before, p0, p1, (0, 200, 0), 2)
        after = _gray_to_bgr(read_image(Path(cache_root), row["cache_path"]))
        gap = np.full((tile_height, 8, 3), 64, np.uint8)
        rows.append(np.hstack([_fit(before, tile_height), gap, _fit(after, tile_height)]))
    if not rows:
        raise ValueError("no examples to draw")
    width = max(r.shape[1] for r in rows)
    sheet = np.vstack([np.pad(r, ((4, 4), (0, width - r.shape[1]), (0, 0)), constant_values=32) for r in rows])
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out_png), sheet):
        raise OSError(f"could not write {out_png}")
    return out_png
