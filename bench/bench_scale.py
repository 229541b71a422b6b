"""Catalogue + preprocessing of one synthetic batch on the local pool and on 1 and 2 Dask workers
(LocalCluster on 127.0.0.1), and the cost of a 1 % increment batch relative to the full batch.

    .venv/bin/python bench/bench_scale.py [--patients 5000] [--height 128] [--json out.json]

5000 patients ≈ 20,000 images. Prints one JSON object with, per mode and per phase (catalogue,
preprocess), wall seconds and **CPU seconds** — the figures that stay meaningful on a shared,
loaded machine, where wall time mostly measures the neighbours:

* local modes: this process's ``getrusage(RUSAGE_SELF)`` + ``RUSAGE_CHILDREN`` (the spawn pool's
  workers are joined at the end of each phase, so their CPU is counted in full);
* Dask modes: every worker's own ``time.process_time()`` and its nanny's, asked before and after
  with ``client.run``, plus this (client) process, which also runs the LocalCluster's scheduler.

Per mode: images/s and images per CPU-second (per worker), overhead vs the local pool with the same
number of workers (wall and CPU ratio); and, per mode, the increment ratio = cost(a new batch of 1 %
more studies, catalogued and preprocessed on its own into the same cache) / cost(full batch),
in wall and in CPU seconds; and whether every mode gave the same index and quarantine rows
(``outputs_sha256``, ``identical_outputs``). ``local_1`` runs in-process (no pool), as the runner does for 1 worker.
The fan-out's knobs (chunk target, pool threshold) and the Dask workers' environment can be set back to the
old behaviour (``--task-target-s 0``, ``--pool-min-work-s 0``, ``--dask-default-env``) for before/after runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curation import fanout  # noqa: E402
from curation.catalog import build_catalog  # noqa: E402
from curation.demo_cohort import generate_cohort  # noqa: E402
from curation.preprocess.config import PreprocessConfig  # noqa: E402
from curation.preprocess.runner import items_from_folder, run  # noqa: E402
from pipelines.local_services import WORKER_ENVIRON  # noqa: E402

KEY = b"bench-scale"


def _own_cpu() -> float:
    """CPU seconds (user + system) of this process and of its children that have been waited for."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _process_cpu() -> tuple[int, float]:  # runs on each Dask worker / nanny: (pid, that process's CPU seconds)
    return os.getpid(), time.process_time()


class CpuClock:
    """Total CPU seconds of everything that works on the batch: this process (+ joined children),
    and with a Dask client every worker and nanny process of the cluster, each process counted once
    (a LocalCluster's nannies and scheduler live in this process; its workers are its children, not
    waited for until the cluster closes, so never in ``RUSAGE_CHILDREN`` here)."""

    def __init__(self, client=None):
        self.client = client

    def read(self) -> dict[int, tuple[str, float]]:
        me = os.getpid()
        out = {me: ("client", _own_cpu())}
        if self.client is not None:
            for role, nanny in (("workers", False), ("nannies", True)):
                for pid, cpu in self.client.run(_process_cpu, nanny=nanny).values():
                    out.setdefault(pid, (role, cpu))
        return out

    def since(self, before: dict[int, tuple[str, float]]) -> dict[str, float]:
        parts = {"client": 0.0, "workers": 0.0, "nannies": 0.0}
        for pid, (role, cpu) in self.read().items():
            parts[role] += cpu - before.get(pid, (role, 0.0))[1]
        parts["total"] = sum(parts.values())
        return {k: round(v, 2) for k, v in parts.items()}


def _phase(clock: CpuClock, fn):
    cpu0, t0 = clock.read(), time.perf_counter()
    out = fn()
    return out, {"seconds": round(time.perf_counter() - t0, 2), "cpu": clock.since(cpu0)}


def one_pass(batch_dir: Path, cache: Path, config: PreprocessConfig, clock: CpuClock, *, workers: int = 1,
             executor=None) -> dict:
    catalog, cat = _phase(clock, lambda: build_catalog(batch_dir, batch_dir.name, KEY, workers=workers,
                                                       executor=executor))
    result, pre = _phase(clock, lambda: run(items_from_folder(batch_dir / "dicom", KEY, batch_dir.name), cache,
                                            config, workers=workers, executor=executor, batch=batch_dir.name))
    digest = hashlib.sha256(result.index.to_csv(index=False).encode() + result.quarantine.to_csv(index=False).encode())
    return {"images": int(catalog.files_found), "indexed": len(result.index), "quarantined": len(result.quarantine),
            "outputs_sha256": digest.hexdigest()[:16],
            "seconds": round(cat["seconds"] + pre["seconds"], 2),
            "cpu_seconds": round(cat["cpu"]["total"] + pre["cpu"]["total"], 2),
            "catalogue": cat, "preprocess": pre, "load_avg_after": [round(x, 2) for x in os.getloadavg()]}


def run_mode(full: Path, inc: Path, cache: Path, config: PreprocessConfig, workers: int, client=None) -> dict:
    """The full batch, then the 1 % increment batch into the same cache (as the next per-batch run would)."""
    shutil.rmtree(cache, ignore_errors=True)
    clock = CpuClock(client)
    executor = client.get_executor() if client is not None else None
    load_before = [round(x, 2) for x in os.getloadavg()]
    mode = {"workers": workers, "load_avg_before": load_before,
            **one_pass(full, cache, config, clock, workers=workers, executor=executor)}
    mode["increment"] = one_pass(inc, cache, config, clock, workers=workers, executor=executor)
    mode["increment_ratio_wall"] = round(mode["increment"]["seconds"] / mode["seconds"], 4)
    mode["increment_ratio_cpu"] = round(mode["increment"]["cpu_seconds"] / mode["cpu_seconds"], 4)
    return mode


def summarise(modes: dict) -> None:
    for m in modes.values():
        m["images_per_s"] = round(m["images"] / m["seconds"], 2)
        m["images_per_s_per_worker"] = round(m["images_per_s"] / m["workers"], 2)
        m["images_per_cpu_s"] = round(m["images"] / m["cpu_seconds"], 2)
        local = modes.get(f"local_{m['workers']}")
        if local is not None:
            m["overhead_vs_local_wall"] = round(m["seconds"] / local["seconds"] - 1, 3)
            m["overhead_vs_local_cpu"] = round(m["cpu_seconds"] / local["cpu_seconds"] - 1, 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--patients", type=int, default=5000)
    ap.add_argument("--height", type=int, default=128, help="stored height of the synthetic DICOM")
    ap.add_argument("--out-height", type=int, default=64, help="preprocessed height H")
    ap.add_argument("--modes", default="local_1,local_2,dask_1,dask_2")
    ap.add_argument("--worker-env", action="append", default=[], metavar="NAME=VALUE",
                    help="set (or with NAME= unset) a variable of distributed.nanny.pre-spawn-environ for the "
                         "Dask workers, e.g. MALLOC_TRIM_THRESHOLD_= to drop Dask's default of 65536")
    ap.add_argument("--dask-default-env", action="store_true",
                    help="start the Dask workers with Dask's own environment (MALLOC_TRIM_THRESHOLD_=65536), not "
                         "with pipelines.local_services.WORKER_ENVIRON (as local_dask_cluster does)")
    ap.add_argument("--task-target-s", type=float, default=fanout.TASK_TARGET_S,
                    help="estimated work per fan-out task (curation.fanout); 0 = one file per task (the old way)")
    ap.add_argument("--pool-min-work-s", type=float, default=fanout.POOL_MIN_WORK_PER_WORKER_S,
                    help="estimated work per worker below which a batch runs in-process; 0 = always a pool")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import dask
    from distributed import Client, LocalCluster

    fanout.TASK_TARGET_S = args.task_target_s
    fanout.POOL_MIN_WORK_PER_WORKER_S = args.pool_min_work_s
    worker_env = {} if args.dask_default_env else dict(WORKER_ENVIRON)
    for item in args.worker_env:
        name, _, value = item.partition("=")
        worker_env[name] = value or None
    dask.config.set({f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in worker_env.items()})

    config = PreprocessConfig(height=args.out_height, mask_height=min(512, args.out_height))
    tmp = Path(tempfile.mkdtemp(prefix="mammo-bench-scale-"))
    try:
        full, inc = tmp / "hmi", tmp / "hmi__inc"
        gen_clock = CpuClock()
        (_, gen) = _phase(gen_clock, lambda: (generate_cohort("hmi", args.patients, 0, full, height=args.height),
                                              generate_cohort("hmi", max(1, args.patients // 100), 1, inc,
                                                              height=args.height)))
        report = {"patients": args.patients, "increment_patients": max(1, args.patients // 100),
                  "height": args.height, "out_height": args.out_height, "cpu_count": os.cpu_count(),
                  "dask_worker_environ": dict(dask.config.get("distributed.nanny.pre-spawn-environ")),
                  "task_target_s": fanout.TASK_TARGET_S, "pool_min_work_per_worker_s": fanout.POOL_MIN_WORK_PER_WORKER_S,
                  "load_avg_start": [round(x, 2) for x in os.getloadavg()],
                  "generate_seconds": gen["seconds"], "generate_cpu_seconds": gen["cpu"]["total"], "modes": {}}
        for name in args.modes.split(","):
            kind, workers = name.split("_")
            workers = int(workers)
            if kind == "local":
                report["modes"][name] = run_mode(full, inc, tmp / "cache", config, workers)
            else:
                with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, Client(cluster) as client:
                    report["modes"][name] = run_mode(full, inc, tmp / "cache", config, workers, client)
            print(f"{name}: {json.dumps({k: v for k, v in report['modes'][name].items() if k != 'increment'})}",
                  file=sys.stderr, flush=True)
        summarise(report["modes"])
        report["identical_outputs"] = len({(m["outputs_sha256"], m["increment"]["outputs_sha256"])
                                           for m in report["modes"].values()}) == 1
        text = json.dumps(report, indent=1)
        print(text)
        if args.json:
            args.json.write_text(text + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
