"""Lesions drawn into the canonical-frame image, each returning its bounding box.

The malignancy signal is morphological, as in mammography reading (BI-RADS lexicon):

* benign masses: oval/round, circumscribed, low contrast, small;
* indeterminate masses (BI-RADS 4, often benign at biopsy): lobulated, medium;
* malignant masses: irregular margin with spicules radiating from a dense centre, larger
  and brighter — visible at 128–256 px image height;
* malignant calcifications: a tight cluster of fine pleomorphic specks (fine detail that
  only survives at larger heights);
* benign calcifications: a few coarse round specks scattered over a wide area.

Boxes are ``[x0, y0, x1, y1]`` in pixels with exclusive ``x1``/``y1`` (slice convention),
covering every pixel the lesion changed (spicules included), clipped to the image.
"""

from __future__ import annotations

import cv2
import numpy as np

from .anatomy import Geometry
from .plan import Finding

_MIN_VISIBLE = 0.01   # a pixel counts as lesion when the lesion raised it by this much


def _patch(cx: float, cy: float, reach: float, h: int, w: int) -> tuple[int, int, int, int]:
    x0, y0 = max(int(cx - reach), 0), max(int(cy - reach), 0)
    x1, y1 = min(int(cx + reach) + 2, w), min(int(cy + reach) + 2, h)
    return x0, y0, x1, y1


def _polar(x0: int, y0: int, x1: int, y1: int, cx: float, cy: float) -> tuple[np.ndarray, np.ndarray]:
    ys = np.arange(y0, y1, dtype=np.float32)[:, None] - cy
    xs = np.arange(x0, x1, dtype=np.float32)[None, :] - cx
    return np.sqrt(xs ** 2 + ys ** 2), np.arctan2(ys, xs)


def _radial_margin(rng: np.random.Generator, theta: np.ndarray, roughness: float, lobes: int) -> np.ndarray:
    """Radius multiplier r(θ): a few harmonics — smooth for benign, rough for malignant."""
    out = np.ones_like(theta)
    for k in range(2, 2 + lobes):
        out += roughness / k * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return out


def _mass(rng: np.random.Generator, r: np.ndarray, theta: np.ndarray, radius: float, contrast: float,
          roughness: float, lobes: int, elongation: float) -> np.ndarray:
    squash = 1.0 + elongation * np.cos(2 * (theta - rng.uniform(0, np.pi)))
    edge = radius * _radial_margin(rng, theta, roughness, lobes) * squash
    rel = r / np.maximum(edge, 1e-3)
    softness = 0.12 if roughness < 0.2 else 0.2
    core = np.clip((1.0 - rel) / softness, 0.0, 1.0)
    dome = np.sqrt(np.clip(1.0 - rel ** 2, 0.0, 1.0))
    return contrast * (0.6 * core + 0.4 * dome)


def _spicules(rng: np.random.Generator, shape: tuple[int, int], cx: float, cy: float, radius: float,
              contrast: float) -> np.ndarray:
    canvas = np.zeros(shape, np.float32)
    n = int(rng.integers(9, 18))
    thickness = max(1, int(round(radius * 0.07)))
    for ang in rng.uniform(0, 2 * np.pi, n):
        length = radius * rng.uniform(1.5, 2.6)
        p0 = (int(round(cx + 0.6 * radius * np.cos(ang))), int(round(cy + 0.6 * radius * np.sin(ang))))
        p1 = (int(round(cx + length * np.cos(ang))), int(round(cy + length * np.sin(ang))))
        cv2.line(canvas, p0, p1, float(contrast * rng.uniform(0.35, 0.6)), thickness, lineType=cv2.LINE_AA)
    return cv2.GaussianBlur(canvas, (3, 3), 0)


def _specks(rng: np.random.Generator, shape: tuple[int, int], cx: float, cy: float, spread: float, n: int,
            speck_radius: float, contrast: float, pleomorphic: bool) -> np.ndarray:
    canvas = np.zeros(shape, np.float32)
    for _ in range(n):
        dx, dy = rng.normal(0, spread / 2, 2) if pleomorphic else rng.uniform(-spread, spread, 2)
        px, py = cx + dx, cy + dy
        rad = max(1, int(round(speck_radius * rng.uniform(0.6, 1.4))))
        value = float(contrast * rng.uniform(0.7, 1.0))
        if pleomorphic and rng.random() < 0.35:  # fine linear / branching forms
            ang = rng.uniform(0, np.pi)
            d = rad * 2.5
            cv2.line(canvas, (int(px - d * np.cos(ang)), int(py - d * np.sin(ang))),
                     (int(px + d * np.cos(ang)), int(py + d * np.sin(ang))), value, max(1, rad // 2),
                     lineType=cv2.LINE_AA)
        else:
            cv2.circle(canvas, (int(round(px)), int(round(py))), rad, value, -1, lineType=cv2.LINE_AA)
    return canvas


def draw_finding(image: np.ndarray, inside: np.ndarray, geom: Geometry, finding: Finding,
                 rng: np.random.Generator) -> list[int] | None:
    """Add one finding to ``image`` in place; return its box or None when nothing is visible."""
    h, w = image.shape
    cx, cy = geom.to_pixel(finding.depth, finding.across)
    cx += rng.normal(0, 0.01 * w)           # the same lesion projects slightly differently per view
    cy += rng.normal(0, 0.01 * h)
    radius = max(finding.size * h, 1.5)
    kind = finding.kind

    if kind == "mass_malignant":
        reach = radius * 2.8
    elif kind == "calc_benign":
        reach = radius * 1.1 + 3
    else:
        reach = radius * 1.6 + 3
    x0, y0, x1, y1 = _patch(cx, cy, reach, h, w)
    if x1 <= x0 or y1 <= y0:
        return None
    r, theta = _polar(x0, y0, x1, y1, cx, cy)
    shape = (y1 - y0, x1 - x0)
    lx, ly = cx - x0, cy - y0

    if kind == "mass_benign":
        add = _mass(rng, r, theta, radius, rng.uniform(0.12, 0.17), 0.04, 2, rng.uniform(0.0, 0.25))
    elif kind == "mass_indeterminate":
        add = _mass(rng, r, theta, radius, rng.uniform(0.14, 0.20), 0.22, 4, rng.uniform(0.0, 0.2))
    elif kind == "mass_malignant":
        add = _mass(rng, r, theta, radius, rng.uniform(0.22, 0.30), 0.45, 7, rng.uniform(0.0, 0.3))
        add = np.maximum(add, _spicules(rng, shape, lx, ly, radius, 0.25))
    elif kind == "calc_malignant":
        speck = max(0.8, 0.0025 * h)
        add = _specks(rng, shape, lx, ly, radius, int(rng.integers(10, 28)), speck, 0.45, pleomorphic=True)
        add += _mass(rng, r, theta, radius * 1.1, 0.04, 0.3, 3, 0.1)   # subtle associated density
    elif kind == "calc_benign":
        speck = max(1.2, 0.008 * h)
        add = _specks(rng, shape, lx, ly, radius, int(rng.integers(3, 7)), speck, 0.40, pleomorphic=False)
    else:
        raise ValueError(f"unknown finding kind {kind!r}")

    add = add * inside[y0:y1, x0:x1]
    image[y0:y1, x0:x1] += add
    ys, xs = np.nonzero(add > _MIN_VISIBLE)
    if len(xs) == 0:
        return None
    return [int(x0 + xs.min()), int(y0 + ys.min()), int(x0 + xs.max() + 1), int(y0 + ys.max() + 1)]
