"""Seeded DICOM fuzz run: N mutated files through catalogue + preprocessing; prints one JSON line.

    .venv/bin/python bench/bench_fuzz.py --files 1000 --seed 0 [--workers 2]

Figures: crashes (an exception escaping a batch), unaccounted (entries neither catalogued nor
quarantined, or catalogued images neither indexed nor quarantined), peak RSS, reason counts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curation.dicom_fuzz import run_fuzz  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        fig = run_fuzz(Path(tmp), args.files, args.seed, workers=args.workers)
        out = dataclasses.asdict(fig) | {"seed": args.seed, "workers": args.workers,
                                         "wall_seconds": round(time.perf_counter() - start, 1)}
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
