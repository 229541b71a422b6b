"""What kind of mammogram a DICOM file is, beyond CC/MLO: screening projection or one of the
non-screening kinds (spot compression, magnification, stereotactic/biopsy, specimen radiograph,
implant-displaced, synthesised 2D from tomosynthesis, For Processing raw image).

Every source that speaks is read and the most specific kind found wins (a biopsy
spot view with a magnification modifier is ``stereotactic``; the evidence lists all):

1. ViewModifierCodeSequence (0054,0222), inside ViewCodeSequence or at the top level — CID 4015
   code meanings ("spot compression", "magnification", "implant displaced", ...);
2. ImageType (0008,0008) values (``TOMOSYNTHESIS``/``GENERATED_2D``/``SYNTHETIC`` -> synthesised 2D,
   ``SPECIMEN``, ``STEREO``/``BIOPSY``/``SCOUT``);
3. SeriesDescription, ProtocolName, ImageComments, AcquisitionDeviceProcessingDescription, AcquisitionDeviceProcessingCode
   (``SPOT``, ``MAG``, ``RCC ID``, ``IMPLANT DISPLACED``, ``EKLUND``, ``STEREO``, ``BIOPSY``, ``SPECIMEN``,
   ``C-VIEW``, ``V-PREVIEW``, ``SYNTHETIC 2D``);
4. SOP class / PresentationIntentType: MG For Processing -> ``for_processing`` (weakest: a For
   Processing spot view is a spot view).

A policy (``view_types.yaml`` beside this module, or any YAML of the same shape) maps each kind
to ``quarantine`` or ``keep``; ingest quarantines with reason ``non_screening_view`` and a message
naming the kind and the tag that said so, or keeps the image with the kind in ``view_type``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

SCREENING = "screening"
KINDS = ("stereotactic", "specimen", "spot_compression", "magnification", "implant_displaced",
         "synthesised_2d", "for_processing")
DESCRIPTIONS = {
    "stereotactic": "stereotactic / biopsy guidance view",
    "specimen": "specimen radiograph (excised tissue)",
    "spot_compression": "spot compression view",
    "magnification": "magnification view",
    "implant_displaced": "implant-displaced (Eklund) view",
    "synthesised_2d": "synthesised 2D image from tomosynthesis",
    "for_processing": "For Processing (raw detector) image",
}
DEFAULT_POLICY = Path(__file__).with_name("view_types.yaml")
FOR_PROCESSING_SOP = "1.2.840.10008.5.1.4.1.1.1.2.1"

# CID 4015 "View Modifier for Mammography" meanings (lower case) and the kind they mean
_MODIFIER_MEANINGS = (
    ("stereotactic", "stereotactic"), ("biopsy", "stereotactic"), ("scout", "stereotactic"),
    ("specimen", "specimen"),
    ("spot compression", "spot_compression"), ("spot", "spot_compression"),
    ("magnifi", "magnification"),
    ("implant displaced", "implant_displaced"), ("implant-displaced", "implant_displaced"),
)
_IMAGE_TYPE = {"SPECIMEN": "specimen", "STEREO": "stereotactic", "BIOPSY": "stereotactic", "SCOUT": "stereotactic",
               "TOMOSYNTHESIS": "synthesised_2d", "GENERATED_2D": "synthesised_2d", "SYNTHETIC": "synthesised_2d",
               "SYNTHESIZED": "synthesised_2d", "SYNTHESISED": "synthesised_2d", "C-VIEW": "synthesised_2d"}
_B, _E = r"(?<![A-Z0-9])", r"(?![A-Z0-9_])"
_TEXT_PATTERNS = (
    (re.compile(_B + r"(STEREO\w*|STX|BIOPSY|BX|SCOUT|PRE[\s_-]?FIRE|POST[\s_-]?FIRE)" + _E), "stereotactic"),
    (re.compile(_B + r"(SPECIMEN|SPECIMAN|SPEC)" + _E), "specimen"),
    (re.compile(_B + r"(SPOT\w*|SPT)" + _E), "spot_compression"),
    (re.compile(_B + r"(MAG\w*|M(?:CC|MLO|ML|LM))" + _E), "magnification"),
    (re.compile(_B + r"(IMPLANT[\s_-]*DISPLACED|EKLUND|(?:[LR][\s_-]*)?(?:CC|MLO|ML)[\s_-]*ID)" + _E), "implant_displaced"),
    (re.compile(_B + r"(C[\s_-]?VIEW|V[\s_-]?PREVIEW|SYNTH\w*|S[\s_-]?VIEW|2D[\s_-]?SYN\w*)" + _E), "synthesised_2d"),
)
_TEXT_TAGS = ("SeriesDescription", "ProtocolName", "ImageComments", "AcquisitionDeviceProcessingDescription",
              "AcquisitionDeviceProcessingCode")


class ViewTypePolicy(BaseModel):
    """kind -> what ingest does with it; unknown kinds or actions are an error naming the field."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    policy_version: str = Field(description="recorded with every decision")
    actions: dict[Literal["stereotactic", "specimen", "spot_compression", "magnification", "implant_displaced",
                          "synthesised_2d", "for_processing"], Literal["quarantine", "keep"]]

    def action(self, kind: str) -> str:
        return "keep" if kind == SCREENING else self.actions.get(kind, "quarantine")


def load_view_policy(path: str | Path | None = None) -> ViewTypePolicy:
    data = yaml.safe_load(Path(path or DEFAULT_POLICY).read_text())
    return ViewTypePolicy.model_validate(data)


@lru_cache(maxsize=4)
def _cached_policy(path: str | None) -> ViewTypePolicy:
    return load_view_policy(path)


@dataclass(frozen=True)
class ViewType:
    kind: str                         # "screening" or one of KINDS
    evidence: tuple[str, ...]         # "Tag=value -> kind" for every source that spoke
    action: str                       # "keep" | "quarantine"

    @property
    def reason(self) -> str:
        """What the image is and why we think so, for the quarantine message."""
        return f"{DESCRIPTIONS.get(self.kind, self.kind)}: " + "; ".join(self.evidence)


def _modifier_items(ds) -> list:
    items = list(ds.get("ViewModifierCodeSequence", None) or [])
    for view in ds.get("ViewCodeSequence", None) or []:
        items += list(view.get("ViewModifierCodeSequence", None) or [])
    return items


def _found(ds) -> list[tuple[str, str, str]]:
    """(kind, tag, value) for every source that names a non-screening kind, in precedence order."""
    found = []
    for item in _modifier_items(ds):
        meaning = str(item.get("CodeMeaning", "") or "").strip()
        for phrase, kind in _MODIFIER_MEANINGS:
            if phrase in meaning.lower():
                found.append((kind, "ViewModifierCodeSequence", meaning))
                break
    image_type = ds.get("ImageType", None) or []
    values = [image_type] if isinstance(image_type, str) else list(image_type)
    for value in values:
        kind = _IMAGE_TYPE.get(str(value).strip().upper())
        if kind:
            found.append((kind, "ImageType", str(value).strip()))
    for tag in _TEXT_TAGS:
        text = str(ds.get(tag, "") or "").strip()
        if not text:
            continue
        upper = text.upper()
        for pattern, kind in _TEXT_PATTERNS:
            if pattern.search(upper):
                found.append((kind, tag, text[:40]))
    sop = str(ds.get("SOPClassUID", "") or "")
    intent = str(ds.get("PresentationIntentType", "") or "").strip().upper()
    if sop == FOR_PROCESSING_SOP or intent == "FOR PROCESSING":
        found.append(("for_processing", "SOPClassUID" if sop == FOR_PROCESSING_SOP else "PresentationIntentType",
                      "MG For Processing"))
    return found


def classify_view_type(ds, policy: ViewTypePolicy | None = None) -> ViewType:
    """The image's kind (most specific source first), every piece of evidence, and the policy's action."""
    policy = policy or _cached_policy(None)
    found = _found(ds)
    if not found:
        return ViewType(SCREENING, (), "keep")
    order = {k: i for i, k in enumerate(KINDS)}
    # a named procedure beats a generic modifier: biopsy > specimen > spot > mag > ID > synthetic > raw
    kind = min((k for k, _, _ in found), key=order.__getitem__)
    evidence = tuple(dict.fromkeys(f"{tag}={value!r} -> {k}" for k, tag, value in found))
    return ViewType(kind, evidence, policy.action(kind))
