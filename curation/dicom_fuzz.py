"""Seeded DICOM fuzzing: mutated mammograms, odd names and odd entries -> catalogue + preprocessing.

For the fuzz test (a few hundred files in ``make test``) and ``bench/bench_fuzz.py`` (>= 1,000).
The same seed writes the same files. Mutations: flipped bytes, cuts, inserted/deleted ranges,
junk or absurd header values (written raw, as a broken exporter would), random files, empty
files, names that are not UTF-8, dotfiles, DICOMDIR, dangling/looping symlinks and named pipes.
The property checked: nothing raises, every entry is catalogued or quarantined, and every
catalogued image is indexed or quarantined by preprocessing.
"""

from __future__ import annotations

import io
import os
import resource
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag
from pydicom.uid import JPEG2000Lossless, RLELossless

from curation.preprocess.phantom import phantom_dataset, phantom_pixels

_HEADER_TWEAKS = (  # (tag, VR, raw value): what broken exporters write
    (0x00280008, "IS", b"abc "), (0x00280010, "US", b"\xff\xff"), (0x00280011, "US", b"\xff\xff"),
    (0x00280100, "US", b"\x0c\x00"), (0x00281051, "DS", b"abcd"), (0x00281050, "DS", b"x\\y "),
    (0x00280002, "US", b"\x03\x00"), (0x00280004, "CS", b"RGB "), (0x00080060, "CS", b"CT"),
    (0x00280010, "US", b"\x00\x00"), (0x00281053, "DS", b"0 "), (0x00200062, "CS", b"Q "),
)


def _seed_bytes(rng: np.random.Generator, i: int) -> bytes:
    rows, cols = int(rng.integers(80, 128)), int(rng.integers(64, 112))
    px, _ = phantom_pixels(rows, cols, "LR"[i % 2], seed=i)
    ds = phantom_dataset(px, laterality="LR"[i % 2], window=(2048, 4096))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.10.1.{i}"
    kind = i % 3
    if kind == 1:
        ds.compress(RLELossless)
    elif kind == 2:
        ds.compress(JPEG2000Lossless)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _tweak(data: bytes, rng: np.random.Generator) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    for _ in range(int(rng.integers(1, 3))):
        tag, vr, raw = _HEADER_TWEAKS[int(rng.integers(len(_HEADER_TWEAKS)))]
        ds[tag] = RawDataElement(Tag(tag), vr, len(raw), raw, 0, False, True)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(buf)
    return buf.getvalue()


def mutate(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """(mutation name, mutated bytes)."""
    op = int(rng.integers(8))
    b = bytearray(data)
    n = len(b)
    if op == 0:
        for i in rng.integers(0, n, int(rng.integers(1, 51))):
            b[i] ^= int(rng.integers(1, 256))
        return "flip", bytes(b)
    if op == 1:
        return "cut", bytes(b[: int(rng.integers(0, n))])
    if op == 2:
        at = int(rng.integers(0, n))
        return "insert", bytes(b[:at] + rng.bytes(int(rng.integers(1, 64))) + b[at:])
    if op == 3:
        at = int(rng.integers(0, n))
        return "delete", bytes(b[:at] + b[at + int(rng.integers(1, 256)):])
    if op in (4, 5):
        try:
            return "header", _tweak(data, rng)
        except Exception:  # the tweak itself failed: flip bytes instead
            return "flip", bytes(b[:132] + rng.bytes(16) + b[148:])
    if op == 6:
        return "random", rng.bytes(int(rng.integers(0, 4096)))
    return "intact", data


@dataclass
class FuzzFigures:
    files: int = 0
    entries: int = 0
    catalogued: int = 0
    ingest_quarantined: int = 0
    indexed: int = 0
    preprocess_quarantined: int = 0
    crashes: int = 0
    unaccounted: int = 0
    reasons: dict | None = None
    peak_rss_mib: float = 0.0
    cpu_seconds: float = 0.0


def write_fuzz_batch(batch_root: Path, n: int, seed: int = 0) -> dict[str, int]:
    """``n`` mutated files (plus special entries) under ``<batch_root>/dicom``; returns mutation counts."""
    rng = np.random.default_rng(seed)
    d = Path(batch_root) / "dicom"
    d.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    base = os.fsencode(str(d))
    first = b""
    for i in range(n):
        seed_file = _seed_bytes(rng, i)  # a fresh image (own SOP UID) per file: duplicates prove nothing
        first = first or seed_file
        name, data = mutate(seed_file, rng)
        counts[name] = counts.get(name, 0) + 1
        style = i % 10
        fname = {0: b"caf\xe9_%d" % i, 1: b".hidden_%d.dcm" % i}.get(style, b"f%05d.dcm" % i)
        sub = os.path.join(base, b"p%02d" % (i % 7))
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, fname), "wb") as fh:
            fh.write(data)
    (d / "DICOMDIR").write_bytes(first)
    os.symlink(d / "nowhere.dcm", d / "dangling.dcm")
    os.symlink(d / "loop.dcm", d / "loop.dcm")
    os.mkfifo(d / "pipe.dcm")
    (d / "empty.dcm").write_bytes(b"")
    return counts


def run_fuzz(workdir: Path, n: int, seed: int = 0, *, workers: int = 1, height: int = 64) -> FuzzFigures:
    """Write a fuzz batch, catalogue and preprocess it; the figures of the run."""
    from curation.catalog import build_catalog
    from curation.file_keys import lookup_path, write_lookup
    from curation.home import MammoHome
    from curation.preprocess.batch import preprocess_batch
    from curation.preprocess.config import PreprocessConfig

    home = MammoHome.from_env(Path(workdir) / "home")
    batch = "fuzz"
    write_fuzz_batch(home.batch_root(batch), n, seed)
    fig = FuzzFigures(files=n)
    cpu0 = time.process_time()
    key = b"fuzz-key"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            cat = build_catalog(home.batch_root(batch), batch, key, workers=workers)
        except Exception:
            fig.crashes += 1
            return fig
        fig.entries, fig.catalogued, fig.ingest_quarantined = cat.files_found, len(cat.catalog), len(cat.quarantine)
        fig.unaccounted += abs(cat.files_found - len(cat.catalog) - len(cat.quarantine))
        from curation.catalog import write_table
        from curation.schemas import CATALOG_SCHEMA

        write_table(cat.catalog, CATALOG_SCHEMA, home.catalog_path(batch))
        write_lookup(cat.files, lookup_path(home.root, batch))
        try:
            s = preprocess_batch(home, batch, PreprocessConfig(height=height, mask_height=64, min_size=32),
                                 workers=workers, sheet_examples=0)
        except Exception:
            fig.crashes += 1
            return fig
    fig.indexed, fig.preprocess_quarantined = s.indexed, s.quarantined
    fig.unaccounted += abs(len(cat.catalog) - s.indexed - s.quarantined)
    reasons = dict(cat.reasons)
    for code, k in s.reasons.items():
        reasons[f"preprocess:{code}"] = k
    fig.reasons = dict(sorted(reasons.items()))
    fig.cpu_seconds = round(time.process_time() - cpu0, 2)
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    fig.peak_rss_mib = round(peak / 1024, 1)
    return fig
