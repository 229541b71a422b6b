"""Tiny synthetic cache + manifest rows for tests and benchmarks of the model area.

Images follow the cache contract (16-bit PNG, breast facing left, value = round(x*65535))
and carry a learnable signal per task: a bright blob for malignant, overall tissue
brightness for density, a pectoral-muscle triangle in the top-left corner for MLO. They
are functional fixtures, not realistic mammograms.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from curation.tasks import TASKS


def synthetic_image(rng: np.random.Generator, height: int, width: int, *, malignant: int, density: str,
                    view: str) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    # half-ellipse breast against the left edge (chest wall)
    cy, ry, rx = height / 2, height * 0.45, width * 0.8
    breast = ((yy - cy) / ry) ** 2 + (xx / rx) ** 2 <= 1.0
    level = {"A": 0.25, "B": 0.4, "C": 0.55, "D": 0.7}[density]
    img = np.where(breast, level + 0.05 * rng.standard_normal((height, width)), 0.0)
    if view == "MLO":
        img = np.where((xx / (width * 0.35) + yy / (height * 0.35)) < 1.0, 0.95, img)
    if malignant:
        by, bx = rng.uniform(0.35, 0.65) * height, rng.uniform(0.15, 0.4) * width
        r = max(2.0, 0.06 * height)
        img = np.where((yy - by) ** 2 + (xx - bx) ** 2 <= r * r, 1.0, img)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def write_synthetic_cache(root: str | Path, n: int, height: int = 64, width: int = 64, seed: int = 0,
                          *, missing_fraction: float = 0.0, image_width: int | None = None) -> pd.DataFrame:
    """Write ``n`` PNGs under ``root/synthetic/`` and return manifest rows for them.

    ``image_width`` lets the stored width differ from the model width (pad/crop tests).
    """
    root = Path(root)
    (root / "synthetic").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        malignant = int(i % 2)
        density = TASKS["density"][i % 4]
        view = TASKS["view"][(i // 2) % 2]
        acr = 5 if malignant else int(rng.choice([1, 2]))
        img = synthetic_image(rng, height, image_width or width, malignant=malignant, density=density, view=view)
        rel = f"synthetic/img_{seed}_{i:05d}.png"
        cv2.imwrite(str(root / rel), np.round(img * 65535.0).astype(np.uint16))
        row = {"image_key": f"img{seed}-{i:05d}", "breast_key": f"acc{seed}-{i // 2:05d}:L",
               "patient_pid": f"pid{seed}-{i // 4:05d}", "cache_path": rel,
               "height": height, "width": image_width or width}
        for task, value in (("breastbin", malignant), ("acr", acr), ("density", density), ("view", view)):
            missing = rng.random() < missing_fraction
            row[task] = None if missing else value
            row[f"{task}_u"] = None if missing else 0.0
            row[f"{task}_weight"] = 0.0 if missing else 1.0
            row[f"{task}_source"] = None if missing else "synthetic"
        rows.append(row)
    df = pd.DataFrame(rows)
    for task in ("breastbin", "acr"):
        df[task] = df[task].astype("Int64")
    return df
