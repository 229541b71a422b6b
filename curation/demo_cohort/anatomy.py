"""Breast anatomy in the *canonical* frame: chest wall at the left edge (x = 0), nipple
pointing right — which is how a LEFT breast is stored by this generator.

Orientation convention of the demo cohorts (also in the truth table, column
``chest_wall_side``):

* left breast (``L``): chest wall at the image's left edge, breast facing right,
  PatientOrientation ``A\\R`` (CC) / ``A\\F`` (MLO, ML);
* right breast (``R``): the mirror image — chest wall at the right edge, breast facing
  left, PatientOrientation ``P\\L`` (CC) / ``P\\F`` (MLO, ML);
* top of a CC image is the lateral side; top of an MLO/ML image is superior (axilla),
  where the pectoral muscle shows as a bright triangle against the chest wall.

Preprocessing flips right breasts so every breast sits on the left of the canvas (paper 3.2).

Intensities here are "display" values in [0, 1] (bright = more attenuation): a dim noisy
background, subcutaneous fat that fades towards the skin line, fibroglandular tissue
whose area fraction follows the ACR composition (A almost entirely fatty … D extremely
dense), and the pectoral muscle on lateral views.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Fraction of the breast area covered by fibroglandular tissue per ACR composition
# (BI-RADS 5th ed.: A almost entirely fatty, B scattered areas, C heterogeneously dense, D extremely dense).
GLAND_FRACTION = {"A": 0.07, "B": 0.25, "C": 0.52, "D": 0.80}

BACKGROUND_LEVEL = 0.035


@dataclass(frozen=True)
class Geometry:
    """Breast silhouette as an ellipse centred on the chest wall, plus the pectoral triangle."""
    height: int
    width: int
    view: str
    a: float            # breast depth from the chest wall (px)
    cy: float           # vertical centre of the breast on the chest wall (px)
    b: float            # half extent along the chest wall (px)
    pec_w: float        # pectoral triangle: width at the top edge (0 on CC)
    pec_h: float        # ... height along the chest wall

    def to_pixel(self, depth: float, across: float) -> tuple[float, float]:
        """Breast-relative position (depth 0..1 from chest wall, across -1..1) -> (x, y)."""
        x = depth * self.a
        half = self.b * np.sqrt(max(1.0 - (x / self.a) ** 2, 0.0))
        y = self.cy + across * half
        if self.pec_w > 0:  # keep lesions out of the pectoral muscle
            x_pec = self.pec_w * max(1.0 - y / self.pec_h, 0.0)
            x = max(x, x_pec + 0.08 * self.a)
        return float(x), float(y)


def make_geometry(rng: np.random.Generator, height: int, width: int, view: str) -> Geometry:
    if view == "CC":
        return Geometry(height, width, view,
                        a=float(rng.uniform(0.60, 0.76)) * width, cy=float(rng.uniform(0.47, 0.53)) * height,
                        b=float(rng.uniform(0.38, 0.45)) * height, pec_w=0.0, pec_h=1.0)
    return Geometry(height, width, view,
                    a=float(rng.uniform(0.58, 0.72)) * width, cy=float(rng.uniform(0.54, 0.60)) * height,
                    b=float(rng.uniform(0.40, 0.44)) * height,
                    pec_w=float(rng.uniform(0.20, 0.30)) * width, pec_h=float(rng.uniform(0.42, 0.60)) * height)


def smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Band-limited noise: a coarse random grid upsampled bicubically; zero mean, unit sd."""
    gh = max(2, cells)
    gw = max(2, int(round(cells * width / height)))
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    field = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    return (field - field.mean()) / (field.std() + 1e-6)


def radial_streaks(rng: np.random.Generator, geom: "Geometry") -> np.ndarray:
    """Noise stretched along lines converging on the nipple: ducts and Cooper's ligaments
    run radially from the nipple towards the chest wall, which gives parenchyma its grain."""
    n_rho, n_theta = 6, 72
    grid = rng.standard_normal((n_rho, n_theta)).astype(np.float32)
    # the field is smooth: sample it on a quarter-resolution grid, then upsample
    step = 4 if geom.height >= 256 else 1
    h, w = -(-geom.height // step), -(-geom.width // step)
    xs, ys = coordinates(h, w)
    xs, ys = xs * step, ys * step
    dx, dy = xs - geom.a, ys - geom.cy
    rho = np.sqrt(dx ** 2 + dy ** 2) / max(geom.a, 1.0)
    theta = np.arctan2(dy, -dx)                       # 0 = straight towards the chest wall
    map_x = ((theta + np.pi) / (2 * np.pi) * (n_theta - 1)).astype(np.float32)
    map_y = np.clip(rho * (n_rho - 1), 0, n_rho - 1).astype(np.float32)
    field = cv2.remap(grid, map_x, map_y, interpolation=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    field = (field - field.mean()) / (field.std() + 1e-6)
    # the lines converge behind the nipple, not into a visible star at it
    field = field * np.clip((rho - 0.05) / 0.3, 0.0, 1.0)
    if step > 1:
        field = cv2.resize(field, (geom.width, geom.height), interpolation=cv2.INTER_CUBIC)
    return field


def coordinates(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    return xs, ys


def silhouette(geom: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """(mask, thickness): thickness is 1 in the compressed plateau and falls to 0 at the skin."""
    xs, ys = coordinates(geom.height, geom.width)
    r = np.sqrt((xs / geom.a) ** 2 + ((ys - geom.cy) / geom.b) ** 2)
    inside = r < 1.0
    # compressed breast: near-constant thickness, thinning over the outer ~20 % towards the skin
    thickness = np.clip((1.0 - r) / 0.2, 0.0, 1.0)
    if geom.pec_w > 0:
        # axillary tail: the tissue between the pectoral muscle and the breast ellipse
        ax, ay = geom.pec_w * 1.9, max(geom.pec_h * 1.3, geom.cy + 0.1 * geom.height)
        axilla = xs < ax * (1.0 - ys / ay)
        d_ax = np.clip((ax * (1.0 - ys / ay) - xs) / (0.15 * ax), 0.0, 1.0)
        thickness = np.maximum(thickness, np.where(axilla, d_ax, 0.0))
        inside |= axilla
    thickness = np.sqrt(thickness).astype(np.float32)
    return inside, thickness


def pectoral(geom: Geometry) -> np.ndarray:
    """Soft pectoral-muscle triangle in the upper chest-wall corner (lateral views only)."""
    if geom.pec_w <= 0:
        return np.zeros((geom.height, geom.width), np.float32)
    xs, ys = coordinates(geom.height, geom.width)
    edge = geom.pec_w * (1.0 - ys / geom.pec_h) - xs
    return np.clip(edge / (0.04 * geom.pec_w) + 0.5, 0.0, 1.0).astype(np.float32)


def fibroglandular(rng: np.random.Generator, geom: Geometry, inside: np.ndarray, thickness: np.ndarray,
                   density: str) -> np.ndarray:
    """Soft map of dense tissue covering ~GLAND_FRACTION[density] of the breast.

    Glandular tissue concentrates in the central / retro-areolar region and fans out
    towards the chest wall; fat dominates the periphery — hence the spatial prior.
    """
    h, w = geom.height, geom.width
    xs, ys = coordinates(h, w)
    u = xs / geom.a
    v = (ys - geom.cy) / geom.b
    prior = np.exp(-((u - 0.45) ** 2) / 0.12 - (v ** 2) / 0.45) * thickness
    field = (0.50 * smooth_noise(rng, h, w, 7) + 0.35 * smooth_noise(rng, h, w, 18)
             + 0.25 * smooth_noise(rng, h, w, 45) + 0.35 * radial_streaks(rng, geom) + 2.0 * prior)
    frac = GLAND_FRACTION[density]
    threshold = np.quantile(field[inside], 1.0 - frac) if inside.any() else 0.0
    # a soft edge: parenchyma interleaves with fat rather than ending in a cliff
    gland = 1.0 / (1.0 + np.exp(-(field - threshold) / 0.22))
    return (gland * inside).astype(np.float32)


def render_anatomy(rng: np.random.Generator, geom: Geometry, density: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (image in [0,1], breast mask) in the canonical frame."""
    h, w = geom.height, geom.width
    inside, thickness = silhouette(geom)
    gland = fibroglandular(rng, geom, inside, thickness, density)
    pec = pectoral(geom) * inside
    texture = 0.6 * radial_streaks(rng, geom) + 0.4 * smooth_noise(rng, h, w, 70)
    # skin is denser than the subcutaneous fat beneath it: a faint bright rim along the edge
    skin = np.exp(-(thickness ** 2) / 0.04)
    tissue = (0.12 + 0.24 * thickness + 0.07 * skin + 0.20 * gland * np.sqrt(thickness)
              + (0.015 + 0.03 * gland) * texture * thickness + 0.22 * pec)
    image = np.where(inside, tissue, BACKGROUND_LEVEL).astype(np.float32)
    # the skin line blurs into the background over a few pixels
    k = max(3, int(round(h / 256)) * 2 + 1)
    image = cv2.GaussianBlur(image, (k, k), 0)
    return np.clip(image, 0.0, 1.0), inside
