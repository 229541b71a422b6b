"""Before/after contact sheet: each row shows the decoded original (crop box drawn in green,
right breasts as stored) next to the cached network input, so a person sees at a glance that
labels were removed, nothing was cut off and every breast faces the same way.

Privacy: burned-in text can carry a patient's name or ID, and this sheet ends up in Dagster
metadata. In the "before" panel every object the pipeline removed is painted over in solid red
(one colour, slightly grown), so one sees *that* and *where* something was removed without being
able to read it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from curation.decode import DecodeError, read_dicom
from curation.preprocess.cache import read_image
from curation.preprocess.config import PreprocessConfig
from curation.preprocess.steps import breast_mask, downsample


def _gray_to_bgr(img01: np.ndarray) -> np.ndarray:
    u8 = np.clip(img01 * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(u8, cv2.COLOR_GRAY2BGR)


def _paint_removed_objects(before: np.ndarray, small01: np.ndarray) -> None:
    """Solid red over every above-background object that is not the breast (labels, markers)."""
    config = PreprocessConfig(height=max(32, small01.shape[0]), mask_height=max(32, small01.shape[0]))
    try:
        bg, comp = breast_mask(small01, config)
    except DecodeError:
        before[:] = (0, 0, 160)  # nothing is known to be safe to show
        return
    removed = ((small01 > bg.threshold) & (comp.mask == 0)).astype(np.uint8)
    # close letters into words, then fill each word's whole box: a glyph-shaped overlay stays legible
    removed = cv2.dilate(removed, np.ones((3, 9), np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(removed, connectivity=8)
    for x, y, w, h, _area in stats[1:]:
        cv2.rectangle(before, (int(x) - 1, int(y) - 1), (int(x + w), int(y + h)), (0, 0, 200), thickness=-1)


def _fit(img: np.ndarray, height: int) -> np.ndarray:
    h, w = img.shape[:2]
    return cv2.resize(img, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)


def render(pairs: list[tuple[str, dict]], cache_root: str | Path, out_png: str | Path, tile_height: int = 200) -> Path:
    """``pairs``: (DICOM path, index row) for each example; writes an 8-bit PNG and returns its path."""
    rows = []
    for dicom_path, row in pairs:
        img = read_dicom(dicom_path)
        small, _ = downsample(img.stored, tile_height * 2)
        small01 = img.transform(small).apply(small)
        before = _gray_to_bgr(small01)
        _paint_removed_objects(before, small01)
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
