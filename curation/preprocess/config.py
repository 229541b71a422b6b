"""Typed preprocessing configuration; its hash is half of every cache key.

Any field that changes an output pixel is part of the hash, so a changed setting can never be
served a stale image; ``steps_version`` is bumped by hand when the code of a step changes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

STEPS_VERSION = "2026.11-1"


class PreprocessConfig(BaseModel):
    """Settings of the paper's deterministic pipeline (section 3.2); unknown fields are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    height: int = Field(2048, ge=32, le=8192, description="output height H in pixels (paper: 2048)")
    pad_multiple: int = Field(64, ge=1, le=1024,
                              description="width padded with zeros to a multiple of this (64 = the 64x bottleneck)")
    mask_height: int = Field(512, ge=32, le=2048,
                             description="the mask work runs on a copy downsampled by the integer factor "
                                         "rows // mask_height (so at least this many rows)")
    min_size: int = Field(64, ge=8, description="smaller input rows or columns -> too_small")
    threshold_fraction: float = Field(
        0.3, gt=0.0, lt=1.0,
        description="foreground threshold = background level + fraction x (Otsu threshold - background level)")
    opening_iterations: int = Field(1, ge=0, le=10, description="3x3 openings on the mask (removes speckle, thin lines)")
    mask_dilation: int = Field(2, ge=0, le=20,
                               description="mask pixels added around the breast so the skin line is never zeroed")
    min_breast_fraction: float = Field(0.02, gt=0.0, lt=1.0,
                                       description="largest object below this share of the image -> no_breast")
    min_contrast: float = Field(4.0, ge=0.0,
                                description="breast median minus background level, in background SDs, "
                                            "below which the image is no_breast (flat field, noise)")
    side_margin: float = Field(0.04, ge=0.0, lt=0.5,
                               description="tissue centroid must be this far (share of width) from the centre "
                                           "for the pixels to decide the side; else the tag decides")
    # The paper "rescales intensities to [0, 1]". The VOI transform already maps the display range onto
    # exactly [0, 1], identically for every image of a window; dividing each image by its own maximum
    # would make its brightness depend on its single brightest pixel (a clip, a marker, a calcification),
    # so that is an option, not the default.
    intensity_rescale: Literal["none", "minmax"] = Field(
        "none", description="none: keep the VOI output in [0, 1]; minmax: also divide by the image's maximum")
    for_processing: Literal["percentile", "use_voi"] = Field(
        "percentile", description="For Processing images: percentile window (default) or any VOI present")
    png_compression: int = Field(
        0, ge=0, le=9,
        description="zlib level of the cached PNG, lossless at any level. 0 (stored) writes a 2048-row image in "
                    "~15 ms; 1 takes ~100-200 ms for ~20% smaller files on noisy 16-bit data")
    max_pixels: int = Field(
        60_000_000, ge=1,
        description="pixel budget: a header declaring more (rows x cols x frames) is quarantined as too_large before "
                    "decoding (a corrupt header or a decompression bomb). Not part of the cache key")
    steps_version: str = Field(STEPS_VERSION, description="bumped when a step's code changes")

    @model_validator(mode="after")
    def _mask_not_taller_than_output(self) -> "PreprocessConfig":
        if self.mask_height > max(self.height, 256) * 2:
            raise ValueError(f"mask_height={self.mask_height} is more than twice height={self.height}; "
                             "the mask is meant to be the cheap low-resolution copy")
        return self

    def pixel_fields(self) -> dict:
        """The fields that change output pixels (png_compression is lossless; max_pixels only rejects)."""
        return self.model_dump(exclude={"png_compression", "max_pixels"})

    @property
    def config_hash(self) -> str:
        """Stable across processes, Python versions and field order: sha256 of sorted JSON, 16 hex digits."""
        blob = json.dumps(self.pixel_fields(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
