"""Laterality and view from DICOM tags, each with the tag it came from and a conflict flag.

Mammography headers in the wild disagree with themselves: ImageLaterality says L while the
SeriesDescription says "RCC", ViewPosition is blank while ViewCodeSequence is filled, or a
modality worklist typo survives into ProtocolName. We never silently pick one: every source
that speaks is read, the most authoritative one wins, and disagreement is flagged so the
label's uncertainty (and the review queue) can see it.

Precedence (most authoritative first):
- laterality: ImageLaterality (0020,0062) > Laterality (0020,0060) > free-text descriptions
  (SeriesDescription, ProtocolName, ImageComments, AcquisitionDeviceProcessingDescription) >
  PatientOrientation (0020,0020): by the usual storage convention a left breast has the chest wall
  on the image's left (rows run toward Anterior, "A\\…") and a right breast on the right ("P\\…"),
  so the row direction is independent evidence of the side. It is weakest (a flipped export
  changes it), which is why it only votes and never overrides a laterality tag.
- view: ViewCodeSequence (0054,0220) code > ViewPosition (0018,5101) > descriptions
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# SNOMED / DICOM CID 4014 view codes, legacy SRT and current SCT designators
VIEW_CODES: dict[str, str] = {
    "R-10242": "CC", "399162004": "CC",
    "R-10226": "MLO", "399368009": "MLO",
    "R-10224": "ML", "399260004": "ML",
    "R-10228": "LM", "399352003": "LM",
    "R-10244": "FB", "399196006": "FB",
    "R-102D0": "XCCL", "399192008": "XCCL",
    "R-1024A": "XCCM", "399101009": "XCCM",
}
_VIEW_MEANINGS = (
    ("cranio-caudal exaggerated laterally", "XCCL"),
    ("cranio-caudal exaggerated medially", "XCCM"),
    ("medio-lateral oblique", "MLO"),
    ("mediolateral oblique", "MLO"),
    ("medio-lateral", "ML"),
    ("latero-medial", "LM"),
    ("cranio-caudal", "CC"),
    ("craniocaudal", "CC"),
)
# The paper's view task is CC vs MLO; ML is a lateral view folded into MLO by curation.tasks.
KNOWN_VIEWS = {"CC", "MLO", "ML", "LM", "FB", "XCCL", "XCCM"}

_DESCRIPTION_TAGS = ("SeriesDescription", "ProtocolName", "ImageComments",
                     "AcquisitionDeviceProcessingDescription")
# "RCC", "L MLO", "R-CC", "LEFT MLO", "L_ML"; word boundaries keep "CCD" or "MLOCK" out
_DESC_PATTERN = re.compile(
    r"(?<![A-Z])(RIGHT|LEFT|R|L)[\s_\-]*(XCCL|XCCM|MLO|CC|ML|LM|FB)(?![A-Z])", re.IGNORECASE)
_SIDE_ONLY = re.compile(r"(?<![A-Z])(RIGHT|LEFT)(?![A-Z])", re.IGNORECASE)
_VIEW_ONLY = re.compile(r"(?<![A-Z])(XCCL|XCCM|MLO|CC|ML|LM)(?![A-Z])", re.IGNORECASE)


@dataclass(frozen=True)
class Resolved:
    value: str | None       # the winning value, None when no source speaks
    source: str | None      # tag keyword it came from
    conflict: bool          # another source gave a different value
    seen: tuple[tuple[str, str], ...]  # every (source, value) read, for provenance


def _text(ds, keyword: str) -> str:
    value = ds.get(keyword, None)
    if value is None:
        return ""
    return str(value).strip()


def normalise_laterality(value: str) -> str | None:
    v = value.strip().upper()
    if v in ("L", "LEFT"):
        return "L"
    if v in ("R", "RIGHT"):
        return "R"
    return None  # "B" (both), "U" (unpaired) or junk: not a single breast


def normalise_view(value: str) -> str | None:
    v = value.strip().upper().replace(" ", "")
    return v if v in KNOWN_VIEWS else None


def _descriptions(ds) -> list[tuple[str, str, str | None]]:
    """(tag, laterality, view) found in free-text descriptions."""
    found = []
    for tag in _DESCRIPTION_TAGS:
        text = _text(ds, tag)
        if not text:
            continue
        match = _DESC_PATTERN.search(text)
        if match:
            found.append((tag, normalise_laterality(match.group(1)), normalise_view(match.group(2))))
            continue
        side = _SIDE_ONLY.search(text)
        view = _VIEW_ONLY.search(text)
        if side or view:
            found.append((tag, normalise_laterality(side.group(1)) if side else None,
                          normalise_view(view.group(1)) if view else None))
    return found


def _resolve(candidates: list[tuple[str, str | None]]) -> Resolved:
    seen = tuple((src, val) for src, val in candidates if val)
    if not seen:
        return Resolved(None, None, False, ())
    source, value = seen[0]
    conflict = any(v != value for _, v in seen[1:])
    return Resolved(value, source, conflict, seen)


def votes_text(resolved: Resolved) -> str | None:
    """``"ViewPosition=CC; SeriesDescription=MLO"``: which tag said what (normalised codes, never the tag's free
    text, which may hold anything), or None when no tag spoke. Lets a reviewer see both sides of a conflict."""
    return "; ".join(f"{src}={val}" for src, val in resolved.seen) or None


def resolve_laterality(ds) -> Resolved:
    candidates = [
        ("ImageLaterality", normalise_laterality(_text(ds, "ImageLaterality"))),
        ("Laterality", normalise_laterality(_text(ds, "Laterality"))),
    ]
    candidates += [(tag, lat) for tag, lat, _ in _descriptions(ds)]
    candidates.append(("PatientOrientation", _laterality_from_orientation(ds)))
    return _resolve(candidates)


def _laterality_from_orientation(ds) -> str | None:
    value = ds.get("PatientOrientation", None)
    if not value:
        return None
    rows_toward = str(value[0] if not isinstance(value, str) else value.split("\\")[0]).strip().upper()
    return {"A": "L", "P": "R"}.get(rows_toward[:1]) if rows_toward else None


def _view_from_code_sequence(ds) -> str | None:
    seq = ds.get("ViewCodeSequence", None)
    if not seq:
        return None
    item = seq[0]
    code = str(item.get("CodeValue", "") or "").strip()
    if code in VIEW_CODES:
        return VIEW_CODES[code]
    meaning = str(item.get("CodeMeaning", "") or "").strip().lower()
    for phrase, view in _VIEW_MEANINGS:
        if phrase in meaning:
            return view
    return None


def resolve_view(ds) -> Resolved:
    candidates = [
        ("ViewCodeSequence", _view_from_code_sequence(ds)),
        ("ViewPosition", normalise_view(_text(ds, "ViewPosition"))),
    ]
    candidates += [(tag, view) for tag, _, view in _descriptions(ds)]
    return _resolve(candidates)
