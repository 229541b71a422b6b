"""DICOM catalogue: one pseudonymised row per usable image, one quarantine row per rejected file.

Ingest reads headers only (pixel data is deferred), so cataloguing a batch costs file I/O and a
hash, not decoding. Every file found ends in exactly one of the two tables — the invariant
``found == catalogued + quarantined`` is checked by the ingest asset.

Nothing identifying leaves this module: patient id, accession number and the UIDs are replaced
by keyed HMAC pseudonyms (:mod:`curation.pseudonym`); names, birth date, institution and
referring physician are never read into a row.
"""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd
import pyarrow as pa
import pydicom
from pydicom.errors import InvalidDicomError

from curation.dicom_tags import resolve_laterality, resolve_view
from curation.view_types import classify_view_type
from curation.home import cohort_of_batch
from curation.parquet_io import write_frame
from curation.pseudonym import pseudonymise
from curation.schemas import CATALOG_SCHEMA, QUARANTINE_SCHEMA

# Reason codes a data engineer can filter on; the message says what to do about it.
REASONS = {
    "unreadable": "File could not be read from disk (permissions or I/O error); check the copy from PACS.",
    "not_dicom": "Not a DICOM Part 10 file (no DICM preamble and not parseable); remove it or re-export from PACS.",
    "not_mammography": "Modality is not MG; this pipeline only curates mammograms. Remove it from the batch.",
    "no_pixel_data": "DICOM object carries no PixelData (a structured report or presentation state?).",
    "truncated_pixel_data": "PixelData is shorter than its header says (interrupted transfer); re-send the file.",
    "unsupported_transfer_syntax": "No installed decoder for this transfer syntax; install python-gdcm or re-export uncompressed.",
    "missing_uid": "SOPInstanceUID missing; the image cannot be identified or de-duplicated.",
    "duplicate_sop_instance": "Same SOPInstanceUID as an earlier file in this batch; the earlier file is kept.",
    "laterality_unknown": "No ImageLaterality/Laterality and none inferable from descriptions; fix the header at the source.",
    "non_screening_view": "Not a screening projection (the policy in curation/view_types.yaml quarantines this kind).",
    "multi_frame": "Multi-frame object (tomosynthesis?); only 2D projection mammograms are curated.",
}

MG_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.1.2": "FOR PRESENTATION",
    "1.2.840.10008.5.1.4.1.1.1.2.1": "FOR PROCESSING",
}


@dataclass
class CatalogResult:
    catalog: pd.DataFrame
    quarantine: pd.DataFrame
    files_found: int
    is_demo_key: bool = False
    reasons: Counter = field(default_factory=Counter)

    @property
    def accounted(self) -> bool:
        return self.files_found == len(self.catalog) + len(self.quarantine)


class _Reject(Exception):
    def __init__(self, code: str, detail: str = ""):
        super().__init__(code)
        self.code = code
        self.detail = detail


def find_dicom_files(batch_root: Path) -> list[Path]:
    """Every regular file under ``<batch>/dicom`` (any nesting, any extension), sorted.

    Extension-less files are common in PACS exports, so all files are candidates; hidden
    files (``.DS_Store``) and DICOMDIR index files are skipped because they are not images.
    """
    root = Path(batch_root) / "dicom"
    if not root.is_dir():
        raise FileNotFoundError(f"{root} does not exist: a batch folder needs a dicom/ subfolder")
    files = [p for p in root.rglob("*")
             if p.is_file() and not p.name.startswith(".") and p.name.upper() != "DICOMDIR"]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _decoder_available(transfer_syntax: str) -> bool:
    from pydicom.pixels import get_decoder
    try:
        return bool(get_decoder(transfer_syntax).is_available)
    except (NotImplementedError, ValueError, KeyError):
        return False


def _check_pixel_data(ds, size: int) -> None:
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise _Reject("no_pixel_data")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise _Reject("multi_frame", f"{frames} frames")
    elem = ds.get_item("PixelData", keep_deferred=True)  # a RawDataElement: header only, value unread
    length = getattr(elem, "length", None)
    tell = getattr(elem, "value_tell", None)
    if length is None or tell is None or length == 0xFFFFFFFF:
        return  # encapsulated (compressed): the decoder checks fragments at preprocessing
    expected_end = tell + length
    if expected_end > size:
        raise _Reject("truncated_pixel_data", f"header promises {length} bytes, file holds {size - tell}")
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    bits = int(ds.get("BitsAllocated", 16) or 16)
    spp = int(ds.get("SamplesPerPixel", 1) or 1)
    needed = rows * cols * spp * bits // 8
    if needed and length < needed:
        raise _Reject("truncated_pixel_data", f"{rows}x{cols}x{bits} bits needs {needed} bytes, PixelData has {length}")


def read_header(data: bytes):
    """Parse a DICOM byte string with pixel data deferred (not loaded into memory)."""
    try:
        return pydicom.dcmread(io.BytesIO(data), defer_size=256, force=False)
    except InvalidDicomError as exc:
        raise _Reject("not_dicom", str(exc)[:120]) from None
    except Exception as exc:  # pydicom raises many types on junk; all mean "cannot parse"
        raise _Reject("not_dicom", f"{type(exc).__name__}: {str(exc)[:120]}") from None


def catalog_file(path: Path, batch_root: Path, batch: str, key: bytes) -> dict:
    """Return ``{"ok": row}`` or ``{"reject": row}`` for one file; never raises for bad input."""
    rel = path.relative_to(batch_root).as_posix()
    sha = None
    try:
        data = path.read_bytes()
    except OSError as exc:
        return {"reject": _quarantine_row(batch, rel, "unreadable", f"{type(exc).__name__}", None)}
    sha = hashlib.sha256(data).hexdigest()
    try:
        ds = read_header(data)
        modality = str(ds.get("Modality", "") or "").strip().upper()
        if modality != "MG":
            raise _Reject("not_mammography", f"Modality={modality or 'missing'}")
        _check_pixel_data(ds, len(data))
        ts = str(ds.file_meta.get("TransferSyntaxUID", "") or "")
        if not ts or not _decoder_available(ts):
            raise _Reject("unsupported_transfer_syntax", ts or "missing TransferSyntaxUID")
        sop_uid = str(ds.get("SOPInstanceUID", "") or "").strip()
        if not sop_uid:
            raise _Reject("missing_uid")
        lat = resolve_laterality(ds)
        if lat.value is None:
            raise _Reject("laterality_unknown")
        view = resolve_view(ds)
        view_type = classify_view_type(ds)  # spot/mag/biopsy/specimen/ID/synthetic/raw: curation/view_types.yaml
        if view_type.action == "quarantine":
            raise _Reject("non_screening_view", view_type.reason)
        sop_class = str(ds.get("SOPClassUID", "") or "")
        intent = str(ds.get("PresentationIntentType", "") or "").strip().upper() or MG_SOP_CLASSES.get(sop_class, "")
        accession_key = pseudonymise(str(ds.get("AccessionNumber", "") or ""), "accession", key)
        study_key = pseudonymise(str(ds.get("StudyInstanceUID", "") or ""), "study", key)
        row = {
            "image_key": pseudonymise(sop_uid, "sop", key),
            "batch": batch,
            "cohort": cohort_of_batch(batch),
            "patient_pid": pseudonymise(str(ds.get("PatientID", "") or ""), "patient", key),
            "accession_key": accession_key,
            "study_key": study_key,
            "series_key": pseudonymise(str(ds.get("SeriesInstanceUID", "") or ""), "series", key),
            "breast_key": f"{accession_key or study_key}:{lat.value}",
            "laterality": lat.value,
            "laterality_source": lat.source,
            "laterality_conflict": lat.conflict,
            "view": view.value,
            "view_source": view.source,
            "view_conflict": view.conflict,
            "view_type": view_type.kind,
            "manufacturer": str(ds.get("Manufacturer", "") or "").strip() or None,
            "model": str(ds.get("ManufacturerModelName", "") or "").strip() or None,
            "rows": int(ds.get("Rows", 0) or 0),
            "cols": int(ds.get("Columns", 0) or 0),
            "bits_stored": int(ds.get("BitsStored", 0) or 0),
            "photometric_interpretation": str(ds.get("PhotometricInterpretation", "") or "") or None,
            "transfer_syntax": ts,
            "presentation_intent": intent or None,
            "sop_class": sop_class or None,
            "study_date": _iso_date(str(ds.get("StudyDate", "") or "")),
            "path": rel,
            "sha256": sha,
            "size_bytes": len(data),
            "_sop_uid": sop_uid,  # for de-duplication only; dropped before anything is written
        }
        return {"ok": row}
    except _Reject as rej:
        return {"reject": _quarantine_row(batch, rel, rej.code, rej.detail, sha)}


def _iso_date(value: str) -> str | None:
    value = value.strip()
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return None


def _quarantine_row(batch: str, rel: str, code: str, detail: str, sha: str | None) -> dict:
    message = REASONS[code] + (f" ({detail})" if detail else "")
    return {"batch": batch, "path": rel, "stage": "ingest", "reason_code": code,
            "message": message, "sha256": sha}


def _worker(args) -> dict:
    path, batch_root, batch, key = args
    return catalog_file(path, batch_root, batch, key)


def build_catalog(batch_root: Path, batch: str, key: bytes, *, workers: int = 1,
                  progress: Callable[[int], None] | None = None) -> CatalogResult:
    """Catalogue every file of one batch folder; deterministic for the same files and key."""
    batch_root = Path(batch_root)
    files = find_dicom_files(batch_root)
    jobs = [(p, batch_root, batch, key) for p in files]
    results: Iterable[dict]
    if workers > 1 and len(jobs) > 32:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(_tick(pool.map(_worker, jobs, chunksize=16), progress))
    else:
        results = list(_tick(map(_worker, jobs), progress))

    rows, rejects, seen_uid = [], [], {}
    for res in results:  # files are sorted, so "the earlier file" is well defined
        if "reject" in res:
            rejects.append(res["reject"])
            continue
        row = res["ok"]
        uid = row.pop("_sop_uid")
        if uid in seen_uid:
            rejects.append(_quarantine_row(batch, row["path"], "duplicate_sop_instance",
                                           f"first seen in {seen_uid[uid]}", row["sha256"]))
            continue
        seen_uid[uid] = row["path"]
        rows.append(row)

    catalog = to_frame(rows, CATALOG_SCHEMA)
    quarantine = to_frame(rejects, QUARANTINE_SCHEMA)
    return CatalogResult(catalog=catalog, quarantine=quarantine, files_found=len(files),
                         reasons=Counter(q["reason_code"] for q in rejects))


def _tick(iterable, progress):
    for item in iterable:
        if progress is not None:
            progress(1)
        yield item


def to_frame(rows: list[dict], schema: pa.Schema) -> pd.DataFrame:
    table = pa.Table.from_pylist(rows, schema=schema)
    return table.to_pandas()


def write_table(df: pd.DataFrame, schema: pa.Schema, path: Path) -> None:
    write_frame(df, schema, path)


def summarise(catalog: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Counts per vendor, view and laterality for asset metadata and the CLI summary."""
    out = {}
    for col in ("manufacturer", "view", "laterality"):
        out[col] = {str(k): int(v) for k, v in catalog[col].fillna("missing").value_counts().sort_index().items()}
    return out
