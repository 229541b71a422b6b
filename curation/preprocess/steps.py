"""The paper's preprocessing steps (section 3.2), each a small deterministic function.

Orientation convention ("the breast faces left"): the paper flips right breasts "to align the
object to the left of the canvas", so every output has the **chest wall at the left edge
(column 0) and the nipple pointing right**; padding is added on the right, past the nipple.
Stored images follow the usual hanging convention (left breast: chest wall at the left edge;
right breast: chest wall at the right edge), so a right breast is flipped. The tag is checked
against the pixels: the chest wall is where the tissue mass is (the breast is widest there),
so the side of the tissue centroid says where the chest wall is. When tag and pixels disagree,
the pixels decide and both are recorded.

Order: the paper flips first; here the flip is the last pixel step (after crop and resize, on the
smaller image). Both orders give the same output: the crop box is found on the stored image and
an area resize of a mirrored image is the mirrored area resize (tested).

Speed: all mask work (background estimate, opening, largest component) runs on a copy
downsampled by an integer factor (6 for 3328 rows at ``mask_height`` 512: 36x fewer pixels);
only the crop is transformed at full resolution, once, and resized once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from curation.decode import DecodeError, IntensityTransform, StoredImage
from curation.preprocess.config import PreprocessConfig

_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))


# --- geometry ----------------------------------------------------------------------------------
def flip_horizontal(img: np.ndarray) -> np.ndarray:
    """Mirror left <-> right (a right breast's chest wall moves to the left edge)."""
    return cv2.flip(img, 1)


def padded_width(width: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= width (and >= multiple)."""
    if width < 1 or multiple < 1:
        raise ValueError(f"width={width} and multiple={multiple} must be positive")
    return max(multiple, -(-width // multiple) * multiple)


def pad_width_right(img: np.ndarray, multiple: int) -> np.ndarray:
    """Zeros on the right (past the nipple) up to a multiple of ``multiple`` columns."""
    w = img.shape[1]
    pad = padded_width(w, multiple) - w
    return cv2.copyMakeBorder(img, 0, 0, 0, pad, cv2.BORDER_CONSTANT, value=0) if pad else img


def resized_width(height_in: int, width_in: int, height_out: int) -> int:
    """Width that keeps the aspect ratio at ``height_out`` rows (rounded half up, at least 1)."""
    if height_in < 1 or width_in < 1 or height_out < 1:
        raise ValueError(f"sizes must be positive: {height_in}x{width_in} -> {height_out}")
    return max(1, int(math.floor(width_in * height_out / height_in + 0.5)))


def resize_to_height(img: np.ndarray, height: int) -> np.ndarray:
    """Keep the aspect ratio; area averaging when shrinking (no aliasing), bilinear when enlarging."""
    h, w = img.shape[:2]
    width = resized_width(h, w, height)
    interp = cv2.INTER_AREA if height <= h else cv2.INTER_LINEAR
    return cv2.resize(img, (width, height), interpolation=interp)


# --- background and the breast mask ------------------------------------------------------------
@dataclass(frozen=True)
class Background:
    level: float       # typical background intensity (median below the Otsu threshold)
    otsu: float        # Otsu threshold between background and tissue
    threshold: float   # foreground = value > threshold
    spread: float      # standard deviation of the background class (noise, film grain)
    hist: np.ndarray = field(repr=False, compare=False, default=None)  # 256-bin histogram of the image


def estimate_background(small: np.ndarray, threshold_fraction: float) -> Background:
    """Otsu on an 8-bit copy, then a threshold placed a fraction of the way from the background
    level to Otsu's split: film and DR backgrounds are not exactly 0, and faint skin/fat near
    the edge sits below Otsu's split, so the threshold is kept close to the background."""
    u8 = np.clip(small * 255.0 + 0.5, 0, 255).astype(np.uint8)
    otsu_u8, _ = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # OpenCV returns the lowest level of a flat optimum; an empty gap in the histogram (a clean
    # synthetic or heavily quantised background) would put the split on the background itself,
    # so the split is moved to the middle of the gap up to the next occupied level
    hist = np.bincount(u8.ravel(), minlength=256)
    above = np.nonzero(hist[int(otsu_u8) + 1:])[0]
    split_u8 = otsu_u8 + (above[0] + 1) / 2.0 if above.size else otsu_u8
    otsu = float(split_u8) / 255.0
    # the background class = levels <= Otsu's split (same quantisation, so it is never empty);
    # its statistics come from the histogram, not a sort of the pixels
    level = _hist_median(hist, 0, int(otsu_u8) + 1) / 255.0
    spread = _hist_std(hist, 0, int(otsu_u8) + 1) / 255.0
    return Background(level=level, otsu=otsu, threshold=level + threshold_fraction * (otsu - level), spread=spread,
                      hist=hist)


def _hist_median(hist: np.ndarray, lo: int, hi: int) -> float:
    c = np.cumsum(hist[lo:hi])
    if c.size == 0 or c[-1] == 0:
        return float(lo)
    return float(lo + int(np.searchsorted(c, c[-1] / 2.0)))


def _hist_std(hist: np.ndarray, lo: int, hi: int) -> float:
    w = hist[lo:hi].astype(np.float64)
    if w.sum() == 0:
        return 0.0
    v = np.arange(lo, hi, dtype=np.float64)
    mean = (w * v).sum() / w.sum()
    return float(np.sqrt((w * (v - mean) ** 2).sum() / w.sum()))


@dataclass(frozen=True)
class Component:
    mask: np.ndarray          # uint8 0/1, same shape as the input mask, only the largest object
    area_fraction: float      # its area / image area
    n_objects: int            # objects found (background excluded)
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive ends) in mask pixels


def largest_component(mask: np.ndarray) -> Component | None:
    """Keep the largest 8-connected object; burned-in labels and markers are other objects.
    Ties go to the lowest label (row-major first), so the choice is deterministic."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA]
    best = 1 + int(np.argmax(areas))
    x, y, w, h = (int(v) for v in stats[best, :4])
    return Component(mask=(labels == best).astype(np.uint8), area_fraction=float(areas.max()) / mask.size,
                     n_objects=n - 1, box=(x, y, x + w, y + h))


def tissue_side(component: np.ndarray, margin: float) -> str | None:
    """"left"/"right": the image half holding the chest wall (tissue centroid); None when the centroid
    lies within ``margin`` x width of the centre (a breast filling the detector)."""
    cols = component.sum(axis=0, dtype=np.float64)
    total = cols.sum()
    if total == 0:
        return None
    w = component.shape[1]
    centroid = float((cols * (np.arange(w) + 0.5)).sum() / total) / w
    if centroid < 0.5 - margin:
        return "left"
    if centroid > 0.5 + margin:
        return "right"
    return None


def scale_box(box: tuple[int, int, int, int], factor: int, small_shape: tuple[int, int],
              full_shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Mask-pixel box (exclusive ends) -> full-resolution box. Mask pixel i covers full pixels
    [i*factor, (i+1)*factor); the last mask row/column also owns the remainder rows/columns that an
    integer downsample leaves over, so a box touching the mask edge reaches the image edge."""
    x0, y0, x1, y1 = box
    X1 = full_shape[1] if x1 >= small_shape[1] else x1 * factor
    Y1 = full_shape[0] if y1 >= small_shape[0] else y1 * factor
    return x0 * factor, y0 * factor, min(X1, full_shape[1]), min(Y1, full_shape[0])


def box_to_output(box: tuple[float, float, float, float], crop: tuple[int, int, int, int], content_width: int,
                  height: int, flipped: bool) -> tuple[float, float, float, float]:
    """A box in original stored pixels (x0, y0, x1, y1) -> the same box in the output image
    (crop, scale to ``height`` x ``content_width``, mirror if flipped). For drawing lesion boxes on
    cached images and for checking that lesions survive and labels are removed."""
    cx0, cy0, cx1, cy1 = crop
    sx, sy = content_width / (cx1 - cx0), height / (cy1 - cy0)
    x0, x1 = (box[0] - cx0) * sx, (box[2] - cx0) * sx
    y0, y1 = (box[1] - cy0) * sy, (box[3] - cy0) * sy
    if flipped:
        x0, x1 = content_width - x1, content_width - x0
    return x0, y0, x1, y1


# --- the whole pipeline ------------------------------------------------------------------------
@dataclass(frozen=True)
class Preprocessed:
    image16: np.ndarray               # uint16 (height, padded width), x * 65535, chest wall on the left
    crop: tuple[int, int, int, int]   # x0, y0, x1, y1 in original pixels (exclusive ends), before any flip
    content_width: int                # width before padding
    flipped: bool
    laterality_tag: str | None        # "L"/"R" as given (catalogue or header)
    laterality_pixels: str | None     # "L"/"R" implied by where the chest wall is, None if undecided
    orientation_disagreement: bool    # tag and pixels both spoke and disagree
    background_level: float
    threshold: float
    breast_fraction: float            # largest object / image area (mask resolution)
    n_objects: int
    voi_source: str

    @property
    def image(self) -> np.ndarray:
        """The network input: float32 in [0, 1] (the pipeline works in 16-bit units, the cache's own)."""
        return self.image16.astype(np.float32) * np.float32(1.0 / 65535.0)


def downsample(stored: np.ndarray, mask_height: int) -> tuple[np.ndarray, int]:
    """Area-average by the integer factor k = rows // mask_height (>= 1): OpenCV's integer-factor
    area path is ~6x faster than a fractional resize and the box maps back exactly (x -> k*x)."""
    h, w = stored.shape
    k = max(1, h // mask_height)
    if k == 1:
        return stored, 1
    hs, ws = h // k, max(1, w // k)
    # For an even factor, average every other row only: half the memory traffic, and 18 instead of
    # 36 samples per mask pixel are plenty to decide background vs tissue.
    rows = stored[: hs * k: 2, : ws * k] if k % 2 == 0 else stored[: hs * k, : ws * k]
    return cv2.resize(rows, (ws, hs), interpolation=cv2.INTER_AREA), k


TEXTURE_TO_NOISE = 0.6   # band-pass tissue texture / pixel noise above which the image holds structure
MIN_TEXTURE = 1.0 / 255.0


def texture_and_noise(small01: np.ndarray) -> tuple[float, float]:
    """(std of a band-pass copy, std of the pixel noise), both away from the borders.

    The band (difference of Gaussians at 1.5 % and 8 % of the height) holds breast texture —
    ducts, glandular islands, fat lobules — and removes both pixel noise and the smooth
    gradients a flat-field exposure has (heel effect); the border margin keeps the blur's edge
    handling out of the statistics."""
    s = small01.astype(np.float32)
    a, b = max(1.0, 0.015 * s.shape[0]), max(3.0, 0.08 * s.shape[0])
    dog = cv2.GaussianBlur(s, (0, 0), a) - cv2.GaussianBlur(s, (0, 0), b)
    m = int(2 * b)
    inner = (slice(m, -m), slice(m, -m)) if min(s.shape) > 4 * m else (slice(None), slice(None))
    noise = float(np.std((s - cv2.GaussianBlur(s, (0, 0), 1.0))[inner]))
    return float(np.std(dog[inner])), noise


def fills_detector(small01: np.ndarray) -> bool:
    """True when the image is tissue from edge to edge: no background class stands out (so the
    contrast test cannot speak), yet it holds structured texture that noise and flat fields lack.

    The background estimate never assumes background along every edge (a large breast touches
    the top, bottom and chest-wall edges; a spot or biopsy view is tissue everywhere): an image is
    ``no_breast`` only when it has neither a background to stand out from nor tissue texture."""
    texture, noise = texture_and_noise(small01)
    return texture >= MIN_TEXTURE and texture >= TEXTURE_TO_NOISE * max(noise, 1e-6)


def breast_mask(small01: np.ndarray, config: PreprocessConfig) -> tuple[Background, Component]:
    """Threshold above the background, open away speckle, keep the largest object, grow it a little.
    An image with no background but tissue texture everywhere (:func:`fills_detector`) is all breast."""
    if float(small01.max()) - float(small01.min()) < 1e-6:
        raise DecodeError("blank_image", f"every pixel maps to {float(small01.max()):.3f}")
    bg = estimate_background(small01, config.threshold_fraction)
    fg = small01 > bg.threshold
    # A flat-field exposure or junk has no breast yet Otsu still splits it in two: require the
    # object to stand out from the background by several background standard deviations.
    if fg.any() and not fg.all():
        spread = max(bg.spread, 1.0 / 255.0)
        t_u8 = min(255, int(np.floor(bg.threshold * 255.0)) + 1)
        cnr = (_hist_median(bg.hist, t_u8, 256) / 255.0 - bg.level) / spread
        if cnr < config.min_contrast:
            if fills_detector(small01):
                # no background to stand out from: a large breast or a magnified spot/biopsy view
                ones = np.ones(small01.shape, np.uint8)
                return bg, Component(mask=ones, area_fraction=1.0, n_objects=1,
                                     box=(0, 0, small01.shape[1], small01.shape[0]))
            raise DecodeError("no_breast", f"object-to-background contrast {cnr:.1f} background SDs "
                                           f"< {config.min_contrast} (flat field or noise)")
    mask = fg.astype(np.uint8)
    if config.opening_iterations:
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _KERNEL, iterations=config.opening_iterations)
    comp = largest_component(mask)
    if comp is None or comp.area_fraction < config.min_breast_fraction:
        share = 0.0 if comp is None else comp.area_fraction
        raise DecodeError("no_breast", f"largest object covers {share:.1%} of the image "
                                       f"(< {config.min_breast_fraction:.0%}) above threshold {bg.threshold:.3f}")
    if config.mask_dilation:
        grown = cv2.dilate(comp.mask, _KERNEL, iterations=config.mask_dilation)
        x, y, w, h = cv2.boundingRect(grown)
        comp = Component(mask=grown, area_fraction=comp.area_fraction, n_objects=comp.n_objects,
                         box=(x, y, x + w, y + h))
    return bg, comp


def decide_flip(laterality_tag: str | None, side: str | None) -> tuple[bool, str | None, bool]:
    """(flip, laterality implied by the pixels, disagreement). Pixels win when they speak."""
    from_pixels = {"left": "L", "right": "R"}.get(side) if side else None
    if from_pixels is not None:
        return from_pixels == "R", from_pixels, laterality_tag is not None and laterality_tag != from_pixels
    return laterality_tag == "R", None, False


def preprocess(img: StoredImage, config: PreprocessConfig, laterality: str | None = None,
               transform: IntensityTransform | None = None) -> Preprocessed:
    """Decoded stored values -> the network's input. ``laterality`` (L/R) overrides the header's."""
    rows, cols = img.stored.shape
    if min(rows, cols) < config.min_size:
        raise DecodeError("too_small", f"{rows}x{cols} < {config.min_size} pixels")
    tag = laterality if laterality in ("L", "R") else img.laterality

    small, factor = downsample(img.stored, config.mask_height)
    transform = transform or img.transform(small, for_processing=config.for_processing)
    small01 = transform.apply(small)
    bg, comp = breast_mask(small01, config)
    flip, from_pixels, disagree = decide_flip(tag, tissue_side(comp.mask, config.side_margin))

    x0, y0, x1, y1 = scale_box(comp.box, factor, small.shape, img.stored.shape)
    # The display transform runs on the full-resolution crop, before any resampling (a clipping
    # window does not commute with area averaging); in 16-bit display units, which is exactly
    # the cache's precision and half the memory traffic of float32.
    crop16 = transform.apply16(img.stored[y0:y1, x0:x1])
    out16 = resize_to_height(crop16, config.height)
    bx0, by0, bx1, by1 = comp.box
    mask = comp.mask[by0:by1, bx0:bx1]
    if flip:  # mirror before the (not mirror-symmetric) nearest-neighbour mask resize, as if flipped first
        out16, mask = flip_horizontal(out16), flip_horizontal(mask)
    # zero every pixel outside the breast object (labels, markers, background) at output size
    keep = cv2.resize(mask, (out16.shape[1], out16.shape[0]), interpolation=cv2.INTER_NEAREST)
    np.multiply(out16, keep, out=out16, casting="unsafe")
    top = int(out16.max())
    if top == 0:
        raise DecodeError("no_breast", "the breast object is black after the display transform")
    if config.intensity_rescale == "minmax" and top < 65535:
        out16 = cv2.multiply(out16, 65535.0 / top)  # rounds and saturates: max -> exactly 65535
    content_width = out16.shape[1]
    out16 = pad_width_right(out16, config.pad_multiple)
    return Preprocessed(image16=out16, crop=(x0, y0, x1, y1), content_width=content_width, flipped=flip,
                        laterality_tag=tag, laterality_pixels=from_pixels, orientation_disagreement=disagree,
                        background_level=bg.level, threshold=bg.threshold, breast_fraction=comp.area_fraction,
                        n_objects=comp.n_objects, voi_source=transform.voi_source)
