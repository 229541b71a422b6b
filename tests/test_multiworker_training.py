"""``strategy: multi_worker`` on two CPU worker processes on 127.0.0.1 (TF_CONFIG set by
model.distribute's launcher): both workers train in lock-step (same weights after every epoch,
so gradients were averaged across processes), only the chief writes the model, checkpoints and
history, and a run killed after epoch 1 resumes at epoch 2 on both workers.

One killed-and-resumed run (module fixture) serves every test: process start-up and graph
tracing dominate its cost.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from model.config import AugmentConfig, TrainConfig
from model.distribute import WorkerFailed, train_on_local_workers
from model.synthetic import write_synthetic_cache

EPOCHS = 2


class Killed(RuntimeError):
    pass


class Recorder(keras.callbacks.Callback):
    """Writes, per epoch, the replica count and a hash of this worker's weights to ``folder``."""

    def __init__(self, folder: str, index: int, kill_after: int | None = None):
        super().__init__()
        self.folder, self.index, self.kill_after = folder, index, kill_after

    def on_epoch_end(self, epoch, logs=None):
        digest = hashlib.sha256(b"".join(np.asarray(w).tobytes() for w in self.model.get_weights())).hexdigest()
        record = {"epoch": epoch + 1, "replicas": int(self.model.distribute_strategy.num_replicas_in_sync),
                  "weights": digest}
        with open(Path(self.folder) / f"worker{self.index}.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.kill_after is not None and epoch + 1 == self.kill_after:
            raise Killed(f"simulated kill of worker {self.index} after epoch {epoch + 1}")


class Callbacks:
    def __init__(self, folder: Path, kill_after: int | None):
        self.folder, self.kill_after = str(folder), kill_after

    def __call__(self, index: int):
        return [Recorder(self.folder, index, self.kill_after if index == 0 else None)]


def _records(folder: Path, index: int) -> list[dict]:
    path = folder / f"worker{index}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    rows = write_synthetic_cache(root, 8, height=64, width=64, seed=0)
    out, first, second = (tmp_path_factory.mktemp(n) for n in ("run", "first", "second"))
    cfg = TrainConfig(tasks=("breastbin",), height=64, width=64, epochs=EPOCHS, batch_size=4, seed=0, verbose=0,
                      strategy="multi_worker",
                      augment=AugmentConfig(enabled=False), shuffle_buffer=8, input_threads=1)
    before = set(Path(tempfile.gettempdir()).glob("mammo-worker*"))
    with pytest.raises(WorkerFailed) as killed:
        train_on_local_workers(cfg, rows, rows, root, out, workers=2, timeout_s=900,
                               callbacks_for=Callbacks(first, kill_after=1))
    after_kill = sorted(p.name for p in (out / "checkpoints").glob("*.keras"))
    result = train_on_local_workers(cfg, rows, rows, root, out, workers=2, timeout_s=900,
                                    callbacks_for=Callbacks(second, kill_after=None))
    left = set(Path(tempfile.gettempdir()).glob("mammo-worker*")) - before
    return {"out": out, "first": first, "second": second, "killed": str(killed.value), "after_kill": after_kill,
            "result": result, "scratch_left": left}


def test_the_kill_of_the_chief_stops_the_run_and_names_the_worker(run):
    assert "worker 0" in run["killed"] and "simulated kill" in run["killed"]
    assert run["after_kill"] == ["epoch_001.keras"]


def test_both_workers_train_two_replicas_in_lock_step(run):
    for folder in (run["first"], run["second"]):
        chief, other = _records(folder, 0), _records(folder, 1)
        assert chief and [r["replicas"] for r in chief] == [2] * len(chief)
        # same weights on both workers after each epoch both finished: gradients averaged across processes
        both = min(len(chief), len(other))
        assert both >= 1 and chief[:both] == other[:both]


def test_the_resumed_run_starts_at_epoch_two_on_both_workers(run):
    assert [r["epoch"] for r in _records(run["second"], 0)] == [2]
    assert [r["epoch"] for r in _records(run["second"], 1)] == [2]
    history = pd.read_csv(run["out"] / "history.csv")
    assert list(history["epoch"]) == [1, 2]


def test_only_the_chief_writes_the_model_and_checkpoints(run):
    out = run["out"]
    result = run["result"]
    assert result.model_path == out / "model.keras" and result.model_path.exists()
    assert sorted(p.name for p in (out / "checkpoints").glob("*")) == ["epoch_001.keras", "epoch_002.keras"]
    assert not list(out.glob("_worker_*")), "a non-chief worker wrote into the chief's folder"
    assert not run["scratch_left"], "the non-chief workers' scratch folders were not removed"
    model = keras.models.load_model(result.model_path, compile=False)
    assert model.count_params() > 0


def test_multi_worker_without_the_launcher_strategy_is_refused():
    with pytest.raises(ValueError, match="strategy='multi_worker'"):
        train_on_local_workers(TrainConfig(height=64, width=64), pd.DataFrame(), None, ".", tempfile.mkdtemp())
