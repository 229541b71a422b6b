"""GPU readiness check (issue 11 item 5), run by ``bench/gpu_check.sh``.

Trains the MTL network for ``--steps`` steps at H = ``--height`` on synthetic cached PNGs through
the real input pipeline (``model.data.make_dataset``) with mixed precision and XLA as
``TrainConfig`` sets them, and prints: images/s (after ``--warmup`` steps), peak GPU memory and the
share of step time spent waiting for input (time in ``next(iterator)`` / total). ``--dry-run`` does
the same on a CPU at a tiny size, to test the script without a GPU.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--height", type=int, default=1024)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--images", type=int, default=256, help="synthetic images written to the cache")
    ap.add_argument("--dry-run", action="store_true", help="CPU, 128x64, 6 steps: test the script itself")
    ap.add_argument("--no-mixed-precision", action="store_true")
    ap.add_argument("--no-xla", action="store_true")
    args = ap.parse_args()
    if args.dry_run:
        args.height, args.width, args.steps, args.warmup, args.batch_size, args.images = 128, 64, 6, 2, 4, 16

    import keras
    import tensorflow as tf

    from model.config import TrainConfig
    from model.data import make_dataset
    from model.losses import task_losses
    from model.network import build_mtl_model
    from model.synthetic import write_synthetic_cache

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not args.dry_run:
        print("no GPU visible to TensorFlow (tf.config.list_physical_devices('GPU') is empty); "
              "use --dry-run to test the script on a CPU")
        return 2
    mixed = bool(gpus) and not args.no_mixed_precision
    cfg = TrainConfig(height=args.height, width=args.width, batch_size=args.batch_size, epochs=1,
                      mixed_precision=mixed, jit_compile=bool(gpus) and not args.no_xla)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        rows = write_synthetic_cache(tmp, args.images, args.height, args.width, seed=0)
        print(f"wrote {len(rows)} synthetic {args.height}x{args.width} PNGs in {time.perf_counter() - t0:.1f}s")
        keras.config.set_dtype_policy("mixed_float16" if mixed else "float32")
        model = build_mtl_model(cfg.model_cfg())
        model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=task_losses(cfg.tasks),
                      jit_compile=cfg.jit_compile)
        ds = make_dataset(rows, Path(tmp), height=cfg.height, width=cfg.width, tasks=cfg.tasks,
                          batch_size=cfg.batch_size, training=True, augment_cfg=cfg.augment, drop_remainder=True,
                          threads=cfg.input_threads).repeat()
        it = iter(ds)
        wait = step = 0.0
        n_images = 0
        for i in range(args.steps + args.warmup):
            a = time.perf_counter()
            x, y = next(it)
            b = time.perf_counter()
            model.train_on_batch(x, y)
            c = time.perf_counter()
            if i >= args.warmup:
                wait += b - a
                step += c - a
                n_images += int(x.shape[0])
        peak = None
        if gpus:
            peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**30
        result = {"device": "GPU" if gpus else "CPU (dry run)", "height": cfg.height, "width": cfg.width,
                  "batch_size": cfg.batch_size, "mixed_precision": mixed, "xla": cfg.jit_compile,
                  "steps_timed": args.steps, "images_per_second": round(n_images / step, 1),
                  "peak_gpu_memory_gib": None if peak is None else round(peak, 2),
                  "input_wait_share": round(wait / step, 3)}
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
