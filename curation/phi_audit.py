"""PHI audit: prove that no identifying value from the raw inputs reached any output.

The values to look for are harvested from the inputs themselves (every identifying attribute of
the PS3.15 Basic Profile in every DICOM header under ``cohorts/*/dicom``, each value of a
multi-valued tag and every element inside sequences, any person name; and the ``patient_id``,
``accession_number`` and name/ID-like columns of the CSVs), then every file under ``$MAMMO_HOME``
outside ``cohorts/`` and ``private/`` (the local file-key lookup) is searched: Parquet is decompressed and read
as text (a zstd page would hide a plain byte search), everything else — SQLite event logs,
JSON, Markdown, Keras archives — is searched as bytes, and PNGs by their text chunks. Hits are reported by
kind and file with the value masked, so the audit report is not itself a leak.
"""

from __future__ import annotations

import csv
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from curation.file_keys import PRIVATE_DIR
from curation.pydicom_privacy import dcmread

# Identifying attributes of the DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile
# (Table E.1-1) that carry free values a leak could copy: names, IDs, birth data, addresses, phone
# numbers, institutions and devices, and the instance UIDs the catalogue replaces by pseudonyms.
# Any element of VR PN (a person's name) is collected wherever it sits, sequences included.
# Study/acquisition dates are not searched: the catalogue keeps study_date (for the pathology join).
PHI_TAGS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientBirthTime", "PatientBirthName", "PatientMotherBirthName",
    "OtherPatientIDs", "OtherPatientNames", "IssuerOfPatientID", "PatientAddress", "PatientTelephoneNumbers",
    "MilitaryRank", "BranchOfService", "MedicalRecordLocator", "PatientInsurancePlanCodeSequence",
    "CountryOfResidence", "RegionOfResidence", "EthnicGroup", "Occupation", "AdditionalPatientHistory",
    "PatientComments", "AccessionNumber", "StudyID", "InstitutionName", "InstitutionAddress",
    "InstitutionalDepartmentName", "ReferringPhysicianName", "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers", "PerformingPhysicianName", "NameOfPhysiciansReadingStudy",
    "OperatorsName", "PhysiciansOfRecord", "RequestingPhysician", "ScheduledPerformingPhysicianName",
    "StationName", "DeviceSerialNumber", "RequestAttributesSequence", "RequestedProcedureID",
    "ScheduledProcedureStepID", "PerformedProcedureStepID", "FillerOrderNumberImagingServiceRequest",
    "PlacerOrderNumberImagingServiceRequest", "AdmissionID", "ServiceEpisodeID", "OtherPatientIDsSequence",
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID",
)
_PHI_KEYWORDS = frozenset(PHI_TAGS)
# reports.csv / pathology.csv / labels.csv columns whose values identify (plus any PHI-like column name)
_CSV_KINDS = {"patient_id": "PatientID", "accession_number": "AccessionNumber"}
MIN_LEN = 5  # shorter values ("1", "F") would match everywhere and prove nothing


@dataclass(frozen=True)
class Hit:
    file: str
    kind: str
    masked: str


def _variants(kind: str, value: str) -> set[str]:
    value = value.strip()
    out = {value}
    if kind.endswith("Name") or kind == "PersonName":
        out.add(value.replace("^", " ").strip())
        if kind != "InstitutionName":
            # family and given names identify on their own; institution words ("Breast", "Centre") do not
            out |= {part for part in value.replace("^", " ").split() if len(part) >= MIN_LEN}
    if kind == "PatientBirthDate" and len(value) == 8 and value.isdigit():
        out.add(f"{value[:4]}-{value[4:6]}-{value[6:]}")
    return {v for v in out if len(v) >= MIN_LEN}


def _values(elem) -> list[str]:
    """Every value of an element: multi-valued tags (OtherPatientIDs = "A\\B") give each value."""
    value = elem.value
    if value is None:
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [str(v) for v in value if v is not None and str(v).strip()]
    if isinstance(value, bytes):
        return []
    return [str(value)] if str(value).strip() else []


def _harvest_dataset(ds, values: dict[str, str]) -> None:
    for elem in ds.iterall():  # recurses into sequences (OtherPatientIDsSequence, RequestAttributesSequence...)
        keyword = elem.keyword or ""
        if elem.VR == "SQ":
            continue
        if elem.VR == "PN":
            kind = keyword if keyword in _PHI_KEYWORDS else "PersonName"
        elif keyword in _PHI_KEYWORDS:
            kind = keyword
        else:
            continue
        for raw in _values(elem):
            for v in _variants(kind, raw):
                values.setdefault(v, kind)


def harvest_phi(cohorts: Path) -> dict[str, str]:
    """value -> kind, for every identifying value present in the raw inputs."""
    from curation.validation.phi import phi_like_columns

    values: dict[str, str] = {}
    for dicom_file in sorted(cohorts.glob("*/dicom/**/*")):
        if not dicom_file.is_file():
            continue
        try:
            ds = dcmread(dicom_file, stop_before_pixels=True)
            _harvest_dataset(ds, values)
        except Exception:  # junk files are quarantined by ingest; nothing (more) to harvest
            continue
    for table in ("reports.csv", "pathology.csv", "labels.csv"):
        for path in sorted(cohorts.glob(f"*/{table}")):
            with path.open(newline="", encoding="utf-8", errors="replace") as fh:
                reader = csv.DictReader(fh)
                columns = {c: _CSV_KINDS.get(c, "PersonName" if "name" in c.lower() else f"csv:{c}")
                           for c in (reader.fieldnames or []) if c in _CSV_KINDS or c in phi_like_columns([c])}
                for row in reader:
                    for col, kind in columns.items():
                        v = (row.get(col) or "").strip()
                        for variant in (_variants(kind, v) if v else ()):
                            values.setdefault(variant, kind)
    return values


def _parquet_text(path: Path) -> bytes:
    table = pq.read_table(path)
    parts = [str(table.schema.metadata or {}).encode()]
    for column in table.columns:
        parts.append("\n".join(map(str, column.to_pylist())).encode("utf-8", "replace"))
    return b"\n".join(parts)


def _png_text(data: bytes) -> bytes:
    """The text chunks (tEXt, zTXt, iTXt) of a PNG: the only place a byte string can hide in one
    (pixels are compressed image data — searching them costs minutes and proves nothing)."""
    import struct
    import zlib

    out, pos = [], 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind in (b"tEXt", b"iTXt"):
            out.append(body)
        elif kind == b"zTXt":
            try:
                out.append(zlib.decompress(body.split(b"\0", 1)[1][1:]))
            except (zlib.error, IndexError):
                out.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    return b"\n".join(out)


def _file_bytes(path: Path) -> bytes:
    if path.suffix == ".png":
        data = path.read_bytes()
        return _png_text(data) if data[:8] == b"\x89PNG\r\n\x1a\n" else data
    if path.suffix == ".parquet":
        try:
            return _parquet_text(path)
        except Exception:
            return path.read_bytes()
    if path.suffix in (".keras", ".zip"):
        try:
            with zipfile.ZipFile(path) as zf:
                return b"\n".join(zf.read(n) for n in zf.namelist() if not _is_weights(n))
        except zipfile.BadZipFile:
            return path.read_bytes()
    if _is_weights(path.name):
        return b""
    return path.read_bytes()


def _is_weights(name: str) -> bool:
    """Tensor payloads (Keras .h5 weights, SavedModel variable shards): float arrays, searched for
    nothing — the strings of a model (config, layer names, signatures) live beside them."""
    return name.endswith((".h5", ".weights.h5")) or ".data-" in name


_TOKEN_CHARS = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _whole_token(data: bytes, match: re.Match) -> bool:
    """A birth date 19510317 must not "match" inside the probability 0.195103174 (checked per hit:
    boundary look-arounds in the pattern would cost the regex engine its literal search)."""
    start, end = match.span()
    before = data[start - 1] if start > 0 else None
    after = data[end] if end < len(data) else None
    return before not in _TOKEN_CHARS and before != ord(".") and after not in _TOKEN_CHARS


def audit(home_root: Path, values: dict[str, str] | None = None) -> tuple[list[Hit], int, int]:
    """Search every output file; return (hits, files scanned, distinct values searched)."""
    home_root = Path(home_root)
    cohorts = home_root / "cohorts"
    private = home_root / PRIVATE_DIR  # the file-key lookup: raw paths by design, like cohorts/
    values = values if values is not None else harvest_phi(cohorts)
    if not values:
        return [], 0, 0
    ordered = sorted(values, key=len, reverse=True)
    pattern = re.compile(b"|".join(re.escape(v.encode("utf-8")) for v in ordered))
    hits: list[Hit] = []
    scanned = 0
    for path in sorted(home_root.rglob("*")):
        if not path.is_file() or cohorts in path.parents or private in path.parents:
            continue
        scanned += 1
        data = _file_bytes(path)
        found = {m.group(0).decode("utf-8", "replace") for m in pattern.finditer(data) if _whole_token(data, m)}
        for value in sorted(found):
            hits.append(Hit(str(path.relative_to(home_root)), values[value], value[:2] + "***"))
    return hits, scanned, len(values)
