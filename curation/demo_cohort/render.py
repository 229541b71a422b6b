"""One view's pixels in the stored orientation: anatomy + lesions, mirrored for right
breasts (see the convention in :mod:`.anatomy`), then burned-in text outside the breast.

Burned-in annotations are what real exports carry (laterality/view letters, a lead
marker): the preprocessing must remove them, so their boxes go into the truth table.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .anatomy import make_geometry, render_anatomy
from .lesions import draw_finding
from .plan import ExamPlan, ImagePlan
from .seeding import rng_for

ASPECT = 2560 / 3328          # width / height of a full-field detector image
TEXT_LEVEL = 0.95             # burned-in letters are near-white on display


def image_width(height: int) -> int:
    return max(16, int(round(height * ASPECT / 2)) * 2)


@dataclass(frozen=True)
class RenderedView:
    image: np.ndarray                 # float32 display values in [0, 1], stored orientation
    mask: np.ndarray                  # bool breast mask, stored orientation
    lesion_boxes: list[list[int]]
    lesion_kinds: list[str]
    text_boxes: list[list[int]]
    chest_wall_side: str              # "left" | "right"


def _mirror_box(box: list[int], width: int) -> list[int]:
    x0, y0, x1, y1 = box
    return [width - x1, y0, width - x0, y1]


def _box_of(layer: np.ndarray) -> list[int] | None:
    ys, xs = np.nonzero(layer)
    if len(xs) == 0:
        return None
    return [int(xs.min()), int(ys.min()), int(xs.max() + 1), int(ys.max() + 1)]


def burn_in_text(image: np.ndarray, mask: np.ndarray, label: str, chest_wall_side: str,
                 rng: np.random.Generator) -> list[list[int]]:
    """Draw the view label (and usually a lead marker) in a corner away from the chest wall.

    Both must stay clear of the breast (with a margin): the truth promises text boxes lie
    outside the breast mask, which is what lets preprocessing blank them safely.
    """
    h, w = image.shape
    margin = max(2, h // 64)
    keep_out = cv2.dilate(mask.astype(np.uint8), np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)) > 0
    font = cv2.FONT_HERSHEY_SIMPLEX
    for scale_factor in (1.0, 0.7, 0.5, 0.35):
        scale = max(0.25, 0.032 * h / 22.0 * scale_factor)
        thick = max(1, int(round(scale * 1.6)))
        (tw, th), base = cv2.getTextSize(label, font, scale, thick)
        x = w - margin - tw if chest_wall_side == "left" else margin
        for y in (margin + th, h - margin - base):   # top far corner first, then bottom far corner
            if x < 0 or y - th < 0 or y + base > h:
                continue
            letters = np.zeros((h, w), np.uint8)    # cv2.putText draws on 8-bit images only
            cv2.putText(letters, label, (x, y), font, scale, 255, thick, cv2.LINE_AA)
            if (keep_out & (letters > 0)).any():
                continue
            layers = [letters]
            side = max(3, th // 2)
            my = y + base + margin if y < h // 2 else y - th - margin - side
            mx = x if chest_wall_side == "left" else x + tw - side
            if rng.random() < 0.7 and 0 <= my and my + side < h:
                marker = np.zeros((h, w), np.uint8)
                cv2.rectangle(marker, (mx, my), (mx + side - 1, my + side - 1), 255, max(1, side // 4))
                if not (keep_out & (marker > 0)).any():
                    layers.append(marker)
            boxes = []
            for layer in layers:
                np.maximum(image, layer.astype(np.float32) * (TEXT_LEVEL / 255.0), out=image)
                box = _box_of(layer)
                if box:
                    boxes.append(box)
            return boxes
    return []


def render_view(exam: ExamPlan, view: ImagePlan, height: int, seed: int) -> RenderedView:
    width = image_width(height)
    rng = rng_for(seed, exam.cohort, exam.index, "pixels", view.instance)
    breast = exam.breasts[view.laterality]
    geom = make_geometry(rng, height, width, "CC" if view.view == "CC" else "MLO")
    image, mask = render_anatomy(rng, geom, breast.density)

    boxes, kinds = [], []
    for k, finding in enumerate(breast.findings):
        frng = rng_for(seed, exam.cohort, exam.index, "pixels", view.instance, 100 + k)
        box = draw_finding(image, mask, geom, finding, frng)
        if box is not None:
            boxes.append(box)
            kinds.append(finding.kind)
    np.clip(image, 0.0, 1.0, out=image)

    chest_wall_side = "left"
    if view.laterality == "R":
        image = np.ascontiguousarray(image[:, ::-1])
        mask = np.ascontiguousarray(mask[:, ::-1])
        boxes = [_mirror_box(b, width) for b in boxes]
        chest_wall_side = "right"

    text_boxes = burn_in_text(image, mask, f"{view.laterality} {view.view}", chest_wall_side, rng)
    return RenderedView(image, mask, boxes, kinds, text_boxes, chest_wall_side)
