"""Catalogue + preprocessing of one synthetic batch on the local pool and on 1 and 2 Dask workers
(LocalCluster on 127.0.0.1), and the cost of a 1 % increment batch relative to the full batch.

    .venv/bin/python bench/bench_scale.py [--patients 5000] [--height 128] [--json out.json]

5000 patients ≈ 20,000 images. Prints one JSON object: per mode seconds, images/s, images/s per
worker, overhead vs the local pool with the same number of workers; and increment_ratio =
time(1 % more studies as a new batch) / time(full batch). Wall-clock: run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from curation.catalog import build_catalog
from curation.demo_cohort import generate_cohort
from curation.preprocess.config import PreprocessConfig
from curation.preprocess.runner import items_from_folder, run

KEY = b"bench-scale"


def one_pass(batch_dir: Path, cache: Path, config: PreprocessConfig, *, workers: int = 1, executor=None) -> dict:
    shutil.rmtree(cache, ignore_errors=True)
    start = time.perf_counter()
    catalog = build_catalog(batch_dir, batch_dir.name, KEY, workers=workers, executor=executor)
    result = run(items_from_folder(batch_dir / "dicom"), cache, config, workers=workers, executor=executor)
    seconds = time.perf_counter() - start
    return {"images": catalog.files_found, "indexed": len(result.index), "seconds": round(seconds, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patients", type=int, default=5000)
    ap.add_argument("--height", type=int, default=128, help="stored height of the synthetic DICOM")
    ap.add_argument("--out-height", type=int, default=64, help="preprocessed height H")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    config = PreprocessConfig(height=args.out_height, mask_height=min(64, args.out_height))
    tmp = Path(tempfile.mkdtemp(prefix="mammo-bench-scale-"))
    try:
        full, inc = tmp / "hmi", tmp / "hmi__inc"
        t0 = time.perf_counter()
        generate_cohort("hmi", args.patients, 0, full, height=args.height)
        generate_cohort("hmi", max(1, args.patients // 100), 1, inc, height=args.height)
        report = {"patients": args.patients, "height": args.height, "out_height": args.out_height,
                  "generate_seconds": round(time.perf_counter() - t0, 1), "modes": {}}
        for workers in (1, 2):
            report["modes"][f"local_{workers}"] = {**one_pass(full, tmp / "cache", config, workers=workers),
                                                   "workers": workers}
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                              dashboard_address=None) as cluster, Client(cluster) as client:
                report["modes"][f"dask_{workers}"] = {**one_pass(full, tmp / "cache", config,
                                                                 executor=client.get_executor()), "workers": workers}
        for name, m in report["modes"].items():
            m["images_per_s"] = round(m["images"] / m["seconds"], 1)
            m["images_per_s_per_worker"] = round(m["images_per_s"] / m["workers"], 1)
            local = report["modes"][f"local_{m['workers']}"]
            m["overhead_vs_local"] = round(m["seconds"] / local["seconds"] - 1, 3)
        increment = one_pass(inc, tmp / "cache_inc", config, workers=2)
        report["increment"] = increment
        report["increment_ratio"] = round(increment["seconds"] / report["modes"]["local_2"]["seconds"], 4)
        text = json.dumps(report, indent=1)
        print(text)
        if args.json:
            args.json.write_text(text + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
