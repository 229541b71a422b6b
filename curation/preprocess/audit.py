"""Check preprocessing against the demo generator's truth: every lesion inside the crop, every
burned-in label removed (outside the crop, or zeroed in the output). For tests and benchmarks
only — the pipeline itself never reads truth.parquet."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from curation.preprocess.cache import read_image
from curation.preprocess.steps import box_to_output


@dataclass
class TruthAudit:
    images: int = 0
    lesions: int = 0
    lesions_inside: int = 0
    labels: int = 0
    labels_removed: int = 0
    laterality_checked: int = 0
    laterality_right: int = 0               # flipped exactly when the chest wall was on the right
    failures: list[str] = field(default_factory=list)


def _inside(box, crop) -> bool:
    return box[0] >= crop[0] and box[1] >= crop[1] and box[2] <= crop[2] and box[3] <= crop[3]


def _label_removed(box, crop, row, image) -> bool:
    if box[2] <= crop[0] or box[0] >= crop[2] or box[3] <= crop[1] or box[1] >= crop[3]:
        return True  # cropped away
    x0, y0, x1, y1 = box_to_output(box, crop, int(row.content_width), int(row.height), bool(row.flipped))
    region = image[max(0, math.floor(y0)):min(image.shape[0], math.ceil(y1)),
                   max(0, math.floor(x0)):min(int(row.content_width), math.ceil(x1))]
    return region.size == 0 or float(region.max()) == 0.0


def audit(index: pd.DataFrame, truth: pd.DataFrame, cache_root: str | Path, files: pd.DataFrame) -> TruthAudit:
    """``index`` from the runner, ``files`` its private lookup (``RunResult.files``: file_key -> path
    relative to the cohort folder, e.g. dicom/...), ``truth`` = the generator's truth.parquet."""
    images = truth[truth["level"] == "image"].set_index("file")
    paths = dict(zip(files["file_key"], files["rel_path_text"]))
    out = TruthAudit()
    for row in index.itertuples(index=False):
        source = paths.get(row.file_key)
        if source not in images.index:
            continue
        t = images.loc[source]
        out.images += 1
        crop = (row.crop_x0, row.crop_y0, row.crop_x1, row.crop_y1)
        for box in (t["lesion_boxes"] if t["lesion_boxes"] is not None else []):
            out.lesions += 1
            if _inside(box, crop):
                out.lesions_inside += 1
            else:
                out.failures.append(f"lesion {list(box)} outside crop {crop} in {source}")
        boxes = t["text_boxes"] if t["text_boxes"] is not None else []
        if len(boxes):
            image = read_image(Path(cache_root), row.cache_path)
            for box in boxes:
                out.labels += 1
                if _label_removed(box, crop, row, image):
                    out.labels_removed += 1
                else:
                    out.failures.append(f"label {list(box)} visible in {source}")
        side = t.get("chest_wall_side")  # where the generator put the chest wall: the flip must undo it
        if side in ("left", "right"):
            out.laterality_checked += 1
            ok = bool(row.flipped) == (side == "right")
            out.laterality_right += int(ok)
            if not ok:
                out.failures.append(f"chest wall {side} but flipped={row.flipped} in {source}")
    return out
