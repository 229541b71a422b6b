"""Benchmarks of the network's input pipeline and throughput (not a timed test).

    .venv/bin/python bench/bench_model.py [--quick] [--out bench/results_model.json]

1. pipeline: seconds per training step fed by the real tf.data pipeline (PNG decode +
   augmentation, streaming from the cache) vs the same steps on tensors already in
   memory. Target <= 1.10x.
2. rss: peak resident memory of a training epoch on N and on 4N images, each in a fresh
   process. Target <= 1.1x (streaming: memory does not grow with the dataset).
3. throughput: training and inference images/s at H = 256 and H = 512 on this machine.

Each measurement runs in its own subprocess so one does not inherit another's memory or
traced graphs. The machine is shared, so timings are medians over repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _width(h: int) -> int:
    return max(64, int(round(h * 0.75 / 64)) * 64)


def _setup(root: Path, n: int, h: int):
    from model.synthetic import write_synthetic_cache
    return write_synthetic_cache(root, n, height=h, width=_width(h), seed=0)


def _model(h: int, tasks):
    import keras

    from model.config import ModelConfig
    from model.losses import task_losses
    from model.network import build_mtl_model
    keras.utils.set_random_seed(0)
    m = build_mtl_model(ModelConfig(tasks=tasks, height=h, width=_width(h)))
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss=task_losses(tasks), jit_compile=False)
    return m


class _EpochTimer:
    def __init__(self):
        import keras

        class T(keras.callbacks.Callback):
            def __init__(s):
                super().__init__()
                s.times = []

            def on_epoch_begin(s, epoch, logs=None):
                s.t0 = time.perf_counter()

            def on_epoch_end(s, epoch, logs=None):
                s.times.append(time.perf_counter() - s.t0)
        self.cb = T()


# --- child processes -----------------------------------------------------------------------
def child_pipeline(n: int, h: int, batch: int, epochs: int) -> dict:
    import numpy as np

    from model.config import AugmentConfig
    from model.data import encode_targets, load_image, make_dataset
    import tensorflow as tf
    tasks = ("breastbin", "acr", "density", "view", "rec")
    with tempfile.TemporaryDirectory() as d:
        rows = _setup(Path(d), n, h)
        m = _model(h, tasks)
        real = make_dataset(rows, d, height=h, width=_width(h), tasks=tasks, batch_size=batch, training=True,
                            augment_cfg=AugmentConfig(), seed=0)
        images = np.stack([load_image(tf.constant(str(Path(d) / p)), h, _width(h)).numpy() for p in rows["cache_path"]])
        tg = encode_targets(rows, tasks)
        mem = tf.data.Dataset.from_tensor_slices((images, {**tg, "rec": images})).batch(batch).prefetch(2)
        m.fit(mem.take(1), epochs=1, verbose=0)  # trace once
        steps = -(-n // batch)
        wall = {"real": [], "memory": []}
        cpu = {"real": [], "memory": []}
        for _ in range(epochs):  # interleaved so load changes hit both alike
            for name, ds in (("real", real), ("memory", mem)):
                w0, c0 = time.perf_counter(), time.process_time()
                m.fit(ds, epochs=1, verbose=0, shuffle=False)
                wall[name].append((time.perf_counter() - w0) / steps)
                cpu[name].append((time.process_time() - c0) / steps)
    # the machine is shared: the fastest epoch of each is the least disturbed one
    return {"real_step_s_min": min(wall["real"]), "memory_step_s_min": min(wall["memory"]),
            "ratio_min": min(wall["real"]) / min(wall["memory"]),
            "ratio_median": statistics.median(wall["real"]) / statistics.median(wall["memory"]),
            "cpu_ratio_median": statistics.median(cpu["real"]) / statistics.median(cpu["memory"]),
            "wall_real": wall["real"], "wall_memory": wall["memory"], "cpu_real": cpu["real"],
            "cpu_memory": cpu["memory"], "images": n, "height": h, "width": _width(h), "batch": batch}


def child_rss(n: int, h: int, batch: int) -> dict:
    import resource

    from model.config import AugmentConfig
    from model.data import make_dataset
    tasks = ("breastbin", "acr", "density", "view", "rec")
    with tempfile.TemporaryDirectory() as d:
        rows = _setup(Path(d), n, h)
        m = _model(h, tasks)
        ds = make_dataset(rows, d, height=h, width=_width(h), tasks=tasks, batch_size=batch, training=True,
                          augment_cfg=AugmentConfig(), seed=0)
        t0 = time.perf_counter()
        m.fit(ds, epochs=1, verbose=0, shuffle=False)
        secs = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"images": n, "peak_rss_mib": peak_kib / 1024.0, "seconds": secs,
            "in_memory_dataset_mib": n * h * _width(h) * 4 / 2**20}


def child_rss_pipeline(n: int, h: int, batch: int, in_memory: bool) -> dict:
    """One pass of the training input pipeline alone (no model) at a large H, where holding
    the images would dominate memory; ``in_memory`` is the control that must grow."""
    import resource

    import numpy as np
    import tensorflow as tf

    from model.config import AugmentConfig
    from model.data import encode_targets, load_image, make_dataset
    tasks = ("breastbin", "acr", "density", "view", "rec")
    with tempfile.TemporaryDirectory() as d:
        rows = _setup(Path(d), n, h)
        base_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if in_memory:
            images = np.stack([load_image(tf.constant(str(Path(d) / p)), h, _width(h)).numpy()
                               for p in rows["cache_path"]])
            ds = tf.data.Dataset.from_tensor_slices((images, encode_targets(rows, tasks))).batch(batch)
        else:
            ds = make_dataset(rows, d, height=h, width=_width(h), tasks=tasks, batch_size=batch, training=True,
                              augment_cfg=AugmentConfig(), seed=0)
        for _ in ds:
            pass
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"images": n, "height": h, "in_memory": in_memory, "peak_rss_mib": peak_kib / 1024.0,
            "rss_before_pipeline_mib": base_kib / 1024.0}


def child_throughput(h: int, batch: int, steps: int) -> dict:
    import numpy as np
    import tensorflow as tf

    from model.data import encode_targets
    tasks = ("breastbin", "acr", "density", "view", "rec")
    with tempfile.TemporaryDirectory() as d:
        rows = _setup(Path(d), batch, h)
        tg = encode_targets(rows, tasks)
    x = np.random.default_rng(0).random((batch, h, _width(h), 1), dtype=np.float32)
    y = {**tg, "rec": x}
    m = _model(h, tasks)
    m.train_on_batch(x, y)  # trace
    t0 = time.perf_counter()
    for _ in range(steps):
        m.train_on_batch(x, y)
    train_ips = steps * batch / (time.perf_counter() - t0)
    infer = tf.function(lambda v: m(v, training=False))
    infer(x)
    t0 = time.perf_counter()
    for _ in range(steps):
        infer(x)
    infer_ips = steps * batch / (time.perf_counter() - t0)
    return {"height": h, "width": _width(h), "batch": batch, "train_images_per_s": train_ips,
            "inference_images_per_s": infer_ips}


def _legacy_network():
    """The network as it was before the speed work (reproduced here for the before/after
    ratio): two-step instance norm and UpSampling2D followed by a full-resolution Conv2D."""
    import keras
    from keras import layers, ops

    import model.network as N

    class TwoStepInstanceNorm(keras.layers.Layer):
        def build(self, shape):
            self.gamma = self.add_weight(shape=(shape[-1],), initializer="ones")
            self.beta = self.add_weight(shape=(shape[-1],), initializer="zeros")

        def call(self, x):
            mean = ops.mean(x, axis=(1, 2), keepdims=True)
            var = ops.var(x, axis=(1, 2), keepdims=True)
            return (x - mean) * ops.rsqrt(var + 1e-5) * self.gamma + self.beta

    def upsample_conv(filters, activation=None, kernel_initializer=None, dtype=None, name=None):
        conv = layers.Conv2D(filters, 3, padding="same", activation=activation, dtype=dtype, name=name)
        return lambda x: conv(layers.UpSampling2D(2, name="dec_stem_up")(x))

    saved = N.InstanceNormalization, N.UpsampleConv2D
    N.InstanceNormalization = lambda name=None: TwoStepInstanceNorm(name=name)
    N.UpsampleConv2D = upsample_conv
    return saved


def child_speed(h: int, w: int, batch: int, rounds: int, steps: int) -> dict:
    """Training images per CPU-second of the network before and after the speed work, both
    built and timed in this one process, in alternating rounds (the machine is shared)."""
    import keras
    import numpy as np

    import model.network as N
    from model.config import ModelConfig
    from model.data import encode_targets
    from model.losses import task_losses
    tasks = ("breastbin", "acr", "density", "view", "rec")
    with tempfile.TemporaryDirectory() as d:
        tg = encode_targets(_setup(Path(d), batch, 128), tasks)
    x = np.random.default_rng(0).random((batch, h, w, 1), dtype=np.float32)
    y = {**tg, "rec": x}
    models = {}
    for name in ("before", "after"):
        saved = _legacy_network() if name == "before" else None
        keras.utils.set_random_seed(0)
        m = N.build_mtl_model(ModelConfig(tasks=tasks, height=h, width=w))
        if saved:
            N.InstanceNormalization, N.UpsampleConv2D = saved
        m.compile(optimizer=keras.optimizers.Adam(1e-3), loss=task_losses(tasks), jit_compile=False)
        m.train_on_batch(x, y)  # trace
        models[name] = m
    cpu = {k: [] for k in models}
    for _ in range(rounds):
        for name, m in models.items():
            c0 = time.process_time()
            for _ in range(steps):
                m.train_on_batch(x, y)
            cpu[name].append(steps * batch / (time.process_time() - c0))
    med = {k: statistics.median(v) for k, v in cpu.items()}
    return {"height": h, "width": w, "batch": batch, "images_per_cpu_s": med, "rounds": cpu,
            "ratio": med["after"] / med["before"]}


def _run_child(kind: str, **kw) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--kw", json.dumps(kw)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise RuntimeError(f"{kind} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results_model.json"))
    ap.add_argument("--only", choices=["pipeline", "rss", "throughput", "speed"], action="append")
    ap.add_argument("--merge", action="store_true", help="update --out instead of replacing it")
    ap.add_argument("--child")
    ap.add_argument("--kw")
    a = ap.parse_args()
    if a.child:
        fn = {"pipeline": child_pipeline, "rss": child_rss, "rss_pipeline": child_rss_pipeline,
              "throughput": child_throughput, "speed": child_speed}[a.child]
        print(json.dumps(fn(**json.loads(a.kw))))
        return
    only = set(a.only or ["speed", "pipeline", "rss", "throughput"])
    q = a.quick
    res: dict = {"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                             "python": platform.python_version()}}
    if "speed" in only:
        res["speed"] = [_run_child("speed", h=256, w=128, batch=b, rounds=3 if q else 5, steps=4 if q else 8)
                        for b in ((8,) if q else (8, 16))]
        print("speed", json.dumps(res["speed"]), flush=True)
    if "pipeline" in only:
        res["pipeline"] = _run_child("pipeline", n=32 if q else 128, h=256, batch=8, epochs=3 if q else 9)
        print("pipeline", json.dumps(res["pipeline"]), flush=True)
    if "rss" in only:
        n = 48 if q else 96
        small = _run_child("rss", n=n, h=256, batch=16)
        large = _run_child("rss", n=4 * n, h=256, batch=16)
        res["rss"] = {"n": small, "4n": large, "ratio": large["peak_rss_mib"] / small["peak_rss_mib"]}
        print("rss", json.dumps(res["rss"]), flush=True)
        n, h = (24, 512) if q else (64, 1024)
        pipe = {f"{k}_{'memory' if mem else 'stream'}": _run_child("rss_pipeline", n=m, h=h, batch=8, in_memory=mem)
                for k, m in (("n", n), ("4n", 4 * n)) for mem in (False, True)}
        pipe["ratio_stream"] = pipe["4n_stream"]["peak_rss_mib"] / pipe["n_stream"]["peak_rss_mib"]
        pipe["ratio_memory_control"] = pipe["4n_memory"]["peak_rss_mib"] / pipe["n_memory"]["peak_rss_mib"]
        res["rss_pipeline"] = pipe
        print("rss_pipeline", json.dumps(pipe), flush=True)
    if "throughput" in only:
        res["throughput"] = [_run_child("throughput", h=h, batch=8, steps=3 if q else 6) for h in (256, 512)]
        print("throughput", json.dumps(res["throughput"]), flush=True)
    if a.merge and Path(a.out).exists():
        res = {**json.loads(Path(a.out).read_text()), **res}
    Path(a.out).write_text(json.dumps(res, indent=2))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
