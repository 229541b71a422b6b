"""Catalogue throughput (images/s): header parse + sha256 + pseudonymisation, 1 and 2 workers.

    .venv/bin/python bench/bench_catalog.py [--patients 200] [--height 512] [--dicom-dir DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from curation.catalog import build_catalog
from curation.demo_cohort import generate_cohort


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--height", type=int, default=512)
    ap.add_argument("--batch-dir", type=Path, help="existing batch folder (with dicom/) instead of generating one")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        batch = args.batch_dir
        if batch is None:
            batch = Path(tmp) / "hmi"
            generate_cohort("hmi", args.patients, 0, batch, height=args.height)
        size = sum(p.stat().st_size for p in (batch / "dicom").rglob("*") if p.is_file())
        for workers in (1, 2):
            build_catalog(batch, "hmi", b"bench", workers=workers)  # warm the page cache
            start = time.perf_counter()
            result = build_catalog(batch, "hmi", b"bench", workers=workers)
            elapsed = time.perf_counter() - start
            print(f"workers={workers}: {result.files_found} files ({size / 1e6:.0f} MB) in {elapsed:.2f}s = "
                  f"{result.files_found / elapsed:.0f} images/s, {size / 1e6 / elapsed:.0f} MB/s")


if __name__ == "__main__":
    main()
