"""Vendor-specific detector response: how display intensity becomes stored pixel values.

Real FFDM "For Presentation" images differ by vendor in bit depth, tone curve, noise and
photometric interpretation; a model trained on one vendor must cope with the others, so
the demo cohorts differ in the same ways (values are illustrative, not measured):

=======================  ====  ======================  =====  ===========
manufacturer             bits  tone curve              noise  MONOCHROME1
=======================  ====  ======================  =====  ===========
FUJIFILM Corporation     12    gamma 0.8 (flatter)     1.0 %  50 %
GE Healthcare            14    sigmoid (high contrast) 1.2 %   5 %
HOLOGIC, Inc.            12    linear                  0.8 %   0 %
Planmed                  14    gamma 1.3 (darker)      1.5 %  20 %
SIEMENS                  12    gamma 0.95 + offset     0.9 %   0 %
Philips Medical Systems  16    gamma 1.1               2.0 %  10 %
=======================  ====  ======================  =====  ===========

"For Processing" images are stored as the log-compressed raw detector signal (high where
little tissue attenuates), always MONOCHROME1 so that dense tissue still displays bright.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


def _sigmoid(x: np.ndarray) -> np.ndarray:
    lo, hi = 1 / (1 + np.exp(0.45 / 0.2)), 1 / (1 + np.exp(-0.55 / 0.2))
    return (1 / (1 + np.exp(-(x - 0.45) / 0.2)) - lo) / (hi - lo)


@dataclass(frozen=True)
class VendorProfile:
    bits_stored: int
    curve: Callable[[np.ndarray], np.ndarray]
    noise: float
    p_monochrome1: float
    floor: float          # fraction of the range the darkest output maps to
    ceiling: float        # ... and the brightest


VENDORS: dict[str, VendorProfile] = {
    "FUJIFILM Corporation": VendorProfile(12, lambda x: x ** 0.8, 0.010, 0.50, 0.02, 0.95),
    "GE Healthcare": VendorProfile(14, _sigmoid, 0.012, 0.05, 0.05, 0.80),
    "HOLOGIC, Inc.": VendorProfile(12, lambda x: x, 0.008, 0.0, 0.03, 0.98),
    "Planmed": VendorProfile(14, lambda x: x ** 1.3, 0.015, 0.20, 0.01, 0.70),
    "SIEMENS": VendorProfile(12, lambda x: 0.05 + 0.95 * x ** 0.95, 0.009, 0.0, 0.00, 0.92),
    "Philips Medical Systems": VendorProfile(16, lambda x: x ** 1.1, 0.020, 0.10, 0.02, 0.60),
}


@dataclass(frozen=True)
class StoredPixels:
    array: np.ndarray              # uint16, values < 2**bits_stored
    bits_stored: int
    photometric: str               # MONOCHROME1 | MONOCHROME2
    rescale: tuple[float, float] | None   # (slope, intercept) written to the header, or None
    window: tuple[float, float]    # (centre, width) in output (rescaled) units


def _window(values: np.ndarray) -> tuple[float, float]:
    # wide enough that the brightest lesions are not clipped at the default window
    lo, hi = np.percentile(values, [0.5, 99.9])
    return float(round((lo + hi) / 2, 1)), float(round(max(hi - lo, 1.0) * 1.15, 1))


def to_stored(display: np.ndarray, mask: np.ndarray, manufacturer: str, for_processing: bool,
              noise_rng: np.random.Generator, rng: np.random.Generator) -> StoredPixels:
    """``noise_rng`` draws the pixel noise, ``rng`` the encoding choices — separate streams so
    the header of an image does not depend on how many pixels it has (same cohort, any height)."""
    prof = VENDORS[manufacturer]
    h, w = display.shape
    # quantum noise grows with signal (Poisson-like) plus a detector floor; the background keeps noise too
    noise = noise_rng.standard_normal((h, w), dtype=np.float32)
    noisy = display + prof.noise * (0.4 + np.sqrt(np.clip(display, 0, 1))) * noise
    noisy = np.clip(noisy, 0.0, 1.0)
    maxval = (1 << prof.bits_stored) - 1

    if for_processing:
        bits = 14
        maxval = (1 << bits) - 1
        raw = np.exp(-2.8 * noisy)                       # transmitted fraction
        stored = np.round(raw * maxval).astype(np.uint16)
        breast = stored[mask] if mask.any() else stored.ravel()
        return StoredPixels(stored, bits, "MONOCHROME1", None, _window(breast.astype(np.float64)))

    shaped = prof.curve(noisy)
    value = prof.floor + (prof.ceiling - prof.floor) * shaped
    stored = np.round(np.clip(value, 0, 1) * maxval)
    photometric = "MONOCHROME1" if rng.random() < prof.p_monochrome1 else "MONOCHROME2"
    if photometric == "MONOCHROME1":
        stored = maxval - stored                          # PS3.3 C.7.6.3.1.2: minimum value is white

    rescale = None
    u = rng.random()
    if photometric == "MONOCHROME2" and u < 0.05:
        # coarser storage with a modality LUT restoring the range: output = 2 * stored
        stored = np.floor(stored / 2)
        rescale = (2.0, 0.0)
    elif u < 0.20:
        rescale = (1.0, 0.0)
    stored = stored.astype(np.uint16)
    slope, intercept = rescale if rescale else (1.0, 0.0)
    breast = stored[mask] if mask.any() else stored.ravel()
    return StoredPixels(stored, prof.bits_stored, photometric, rescale,
                        _window(breast.astype(np.float64) * slope + intercept))
