"""Keyed pseudonymisation of identifiers (patient id, accession number, DICOM UIDs).

HMAC-SHA256 with a site key: the same input and key always give the same pseudonym (so
batches ingested months apart still join), nobody without the key can reverse or
dictionary-attack it (unlike a bare hash of a 7-digit MRN). The key comes from
``MAMMO_PSEUDONYM_KEY``; without it a demo key is used and every output says so.
"""

from __future__ import annotations

import hashlib
import hmac
import os

KEY_ENV_VAR = "MAMMO_PSEUDONYM_KEY"
DEMO_KEY = "DEMO-KEY-NOT-FOR-CLINICAL-USE"

# prefixes make a pseudonym's kind readable in tables and stop cross-kind collisions
PREFIX = {"patient": "P", "accession": "A", "study": "S", "series": "E", "sop": "I"}


def key_from_env() -> tuple[bytes, bool]:
    """Return (key, is_demo_key)."""
    value = os.environ.get(KEY_ENV_VAR, "")
    if value:
        return value.encode("utf-8"), False
    return DEMO_KEY.encode("utf-8"), True


def pseudonymise(value: str | None, kind: str, key: bytes) -> str | None:
    """``pseudonymise("12345", "patient", key) -> "P-3fa2…"`` (16 hex chars, 64 bits).

    ``None`` or blank stays ``None``: a missing identifier is not an identity.
    """
    if kind not in PREFIX:
        raise ValueError(f"kind must be one of {sorted(PREFIX)}, got {kind!r}")
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    digest = hmac.new(key, f"{kind}:{text}".encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{PREFIX[kind]}-{digest[:16]}"


def file_key(batch: str, rel: bytes, key: bytes) -> str:
    """Pseudonymous key of one input file (folder and file names are PHI in real exports):
    ``F-`` + 16 hex of HMAC(batch, relative path bytes). The raw path lives only in the local
    lookup under ``$MAMMO_HOME/private/`` (:mod:`curation.file_keys`)."""
    digest = hmac.new(key, b"file:" + batch.encode("utf-8") + b"\0" + bytes(rel), hashlib.sha256).hexdigest()
    return f"F-{digest[:16]}"
