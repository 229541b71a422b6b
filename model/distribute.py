"""Multi-worker training (``strategy: multi_worker``): TF's MultiWorkerMirroredStrategy under Keras 3,
and a launcher for N CPU workers on this machine.

Keras 3 (3.15 with TF 2.21, checked here) cannot ``fit`` under MultiWorkerMirroredStrategy once the
cluster has more than one worker (keras-team/keras#20585). Two places in
``keras.src.backend.tensorflow.trainer`` fail:

1. ``_maybe_symbolic_build`` averages the first *distributed* data batch with
   ``strategy.reduce("MEAN", batch, axis=None)``, which raises ``ValueError: Attempt to convert a value
   (PerReplica:{…}) with an unsupported type (PerReplica) to a Tensor`` before the first step;
2. past that, ``reduce_per_replica`` averages the per-step logs (scalars) with
   ``strategy.reduce("MEAN", v, axis=0)``: ``ValueError: Invalid reduction dimension 0 for input with
   0 dimensions``.

:func:`multi_worker_strategy` installs two narrow replacements that act only when the strategy is a
MultiWorkerMirroredStrategy in multi-worker mode (every other strategy takes Keras' own code): the
symbolic build uses this worker's local shard of the first batch (only shapes matter there) and the
step logs are averaged over all replicas with ``axis=None``. Gradients are still all-reduced by TF's
collectives inside Keras' own train step, so every worker holds the same weights after each step
(tests/test_multiworker_training.py proves it and that resume works).

Layout: the chief (worker 0, or the task of type ``chief``) writes ``out_dir`` as a one-process run
does. :func:`train_on_local_workers` gives every other worker a scratch folder of its own outside
``out_dir`` (seeded with the chief's resume state, removed afterwards), so only the chief writes the
model, checkpoints and history. On a real cluster your launcher sets ``TF_CONFIG`` on each machine.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import socket
import tempfile
from contextlib import closing
from pathlib import Path

MULTI_WORKER = "multi_worker"
TF_CONFIG = "TF_CONFIG"
_installed = False


def install_keras_multi_worker_fixes() -> None:
    """Patch the two Keras 3 functions named in the module doc (idempotent; no-op for other strategies)."""
    global _installed
    if _installed:
        return
    import tensorflow as tf
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer as T

    keras_reduce = T.reduce_per_replica
    keras_build = T.TensorFlowTrainer._maybe_symbolic_build

    def multi_worker(strategy) -> bool:
        return strategy is not None and T._collective_all_reduce_multi_worker(strategy)

    def reduce_per_replica(values, strategy, reduction):
        if multi_worker(strategy) and reduction in ("auto", "mean"):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return keras_reduce(values, strategy, reduction)

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if not multi_worker(strategy) or iterator is None:
            return keras_build(self, iterator=iterator, data_batch=data_batch)
        for _, _, it in iterator:
            batch = next(it)
            data_batch = tree.map_structure(
                lambda v: strategy.experimental_local_results(v)[0]
                if isinstance(v, tf.distribute.DistributedValues) else v, batch)
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    T.reduce_per_replica = reduce_per_replica
    T.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    _installed = True


def multi_worker_strategy():
    """MultiWorkerMirroredStrategy from ``TF_CONFIG`` (one worker when unset), usable by ``model.fit``."""
    import tensorflow as tf

    install_keras_multi_worker_fixes()
    return tf.distribute.MultiWorkerMirroredStrategy()


def cluster_spec(ports: list[int], host: str = "127.0.0.1") -> dict:
    return {"worker": [f"{host}:{p}" for p in ports]}


def tf_config(ports: list[int], index: int, host: str = "127.0.0.1") -> str:
    """TF_CONFIG for worker ``index`` of a cluster of ``len(ports)`` workers on ``host``."""
    return json.dumps({"cluster": cluster_spec(ports, host), "task": {"type": "worker", "index": index}})


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def seed_worker_dir(chief_out: Path, scratch: Path, index: int) -> None:
    """Give a non-chief worker the chief's resume state, where model.train looks for its own
    (``<out_dir>/_worker_<index>/backup``), so all workers restart at the same epoch."""
    chief_out, work = Path(chief_out), Path(scratch) / f"_worker_{index}"
    backup = chief_out / "backup"
    if not backup.is_dir():
        return
    # resume state plus what model.train reads back at the end (every epoch's history row, the checkpoints)
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(backup, work / "backup")
    if (chief_out / "checkpoints").is_dir():
        shutil.copytree(chief_out / "checkpoints", work / "checkpoints")
    if (chief_out / "history.csv").exists():
        shutil.copyfile(chief_out / "history.csv", work / "history.csv")
    if (Path(chief_out) / "run.json").exists():
        shutil.copyfile(Path(chief_out) / "run.json", Path(scratch) / "run.json")


def _worker_main(index: int, ports: list[int], args: tuple, kwargs: dict, conn, cpu_only: bool) -> None:
    os.environ[TF_CONFIG] = tf_config(ports, index)
    if cpu_only:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    try:
        from model.train import train

        result = train(*args, **kwargs)
        conn.send(("ok", result if index == 0 else None))
    except BaseException as exc:  # reported to the launcher, which stops the other workers
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        conn.close()


def train_on_local_workers(config, train_rows, val_rows, image_root, out_dir, init_model=None, *,
                           workers: int = 2, cpu_only: bool = True, timeout_s: float | None = None,
                           callbacks_for=None):
    """Train with ``strategy: multi_worker`` on ``workers`` processes on 127.0.0.1; returns the chief's
    ``TrainResult``. A killed run is resumed by calling this again with the same arguments.

    ``callbacks_for(index)`` may return extra Keras callbacks for worker ``index`` (tests use it)."""
    from model.config import TrainConfig

    config = config if isinstance(config, TrainConfig) else TrainConfig.model_validate(config)
    if config.strategy != MULTI_WORKER:
        raise ValueError(f"strategy={config.strategy!r}: train_on_local_workers needs strategy='{MULTI_WORKER}'")
    if workers < 1:
        raise ValueError(f"workers={workers} must be >= 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ports = free_ports(workers)
    ctx = mp.get_context("spawn")     # no forked TF/Dagster state in the workers
    scratch = [Path(tempfile.mkdtemp(prefix=f"mammo-worker{i}-")) for i in range(1, workers)]
    procs, pipes = [], []
    try:
        for index in range(workers):
            where = out_dir if index == 0 else scratch[index - 1]
            if index:
                seed_worker_dir(out_dir, where, index)
            extra = {"callbacks": callbacks_for(index)} if callbacks_for else {}
            parent, child = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_worker_main, name=f"mammo-train-worker-{index}", daemon=True,
                            args=(index, ports, (config, train_rows, val_rows, image_root, where, init_model),
                                  extra, child, cpu_only))
            p.start()
            child.close()
            procs.append(p)
            pipes.append(parent)
        return _collect(procs, pipes, timeout_s)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(10)
        for s in scratch:
            shutil.rmtree(s, ignore_errors=True)


def _collect(procs, pipes, timeout_s):
    import time

    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    outcomes: dict[int, tuple[str, object]] = {}
    while len(outcomes) < len(procs):
        for i, (p, conn) in enumerate(zip(procs, pipes)):
            if i in outcomes:
                continue
            if conn.poll(0.2):
                try:
                    outcomes[i] = conn.recv()
                except EOFError:
                    outcomes[i] = ("error", f"worker {i} exited with code {p.exitcode} without a result")
            elif not p.is_alive() and not conn.poll(0):
                outcomes[i] = ("error", f"worker {i} exited with code {p.exitcode} without a result")
            if i in outcomes and outcomes[i][0] == "error":
                # the others fail in their next collective or block there: give them a moment to report
                # (so the first cause is named), then the launcher stops them all
                grace = time.monotonic() + 30
                while len(outcomes) < len(procs) and time.monotonic() < grace:
                    for j, conn_j in enumerate(pipes):
                        if j not in outcomes and conn_j.poll(0.2):
                            try:
                                outcomes[j] = conn_j.recv()
                            except EOFError:
                                outcomes[j] = ("error", f"worker {j} exited with code {procs[j].exitcode}")
                failed = {j: o for j, o in outcomes.items() if o[0] == "error"}
                raise WorkerFailed("; ".join(f"worker {j}: {msg}" for j, (_, msg) in sorted(failed.items())))
        if deadline is not None and time.monotonic() > deadline:
            raise WorkerFailed(f"multi-worker training did not finish within {timeout_s:.0f}s")
    return outcomes[0][1]


class WorkerFailed(RuntimeError):
    """A training worker failed or the run timed out; every worker has been stopped."""
