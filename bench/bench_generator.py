"""Benchmark: demo cohort generation speed (images/s) at the demo height, one process.

    .venv/bin/python bench/bench_generator.py [--cohort hmi] [--patients 200] [--height 512] [--seed 0]

Writes into a temporary folder (deleted afterwards) and prints patients/s, images/s and
MB written. The issue's target: 200 patients at the demo height in under a minute.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curation.demo_cohort import generate_cohort  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", default="hmi", choices=["hmi", "inb", "vtb"])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-generator-") as tmp:
        out = Path(tmp) / args.cohort
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        summary = generate_cohort(args.cohort, args.patients, args.seed, out, height=args.height)
        wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
        size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    print(f"cohort={args.cohort} patients={args.patients} height={args.height} images={summary.images} "
          f"files={summary.dicom_files} size={size_mb:.1f}MB")
    print(f"wall={wall:.1f}s cpu={cpu:.1f}s  {summary.images / wall:.1f} images/s (wall)  "
          f"{summary.images / cpu:.1f} images/s (cpu)  {args.patients / wall:.2f} patients/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
