"""Training tests: a run killed after epoch 2 resumes at epoch 3 with its optimizer state,
the loss falls on 8 images, the best epoch is selected and saved, and the CLI drives it.

One killed-and-resumed run (module fixture) serves most tests: graph tracing dominates
the cost of a tiny run on CPU.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from model.baselines import mc_dropout_predict, single_task_config, train_ensemble
from model.config import AugmentConfig, TrainConfig
from model.predict import predict
from model.synthetic import write_synthetic_cache
from model.train import train

EPOCHS = 6
KILL_AFTER = 2  # epochs finished before the simulated kill


class Killed(RuntimeError):
    pass


class _KillAfter(keras.callbacks.Callback):
    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise Killed(f"simulated kill after epoch {epoch + 1}")


class _EpochsSeen(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen: list[int] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(epoch + 1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    rows = write_synthetic_cache(root, 8, height=128, width=64, seed=0)
    return root, rows


@pytest.fixture(scope="module")
def resumed(data, tmp_path_factory):
    root, rows = data
    out = tmp_path_factory.mktemp("run")
    # eager steps: 12 of them cost less than tracing the graph twice (graph mode is what
    # the CLI test below runs)
    cfg = TrainConfig(height=128, width=64, epochs=EPOCHS, batch_size=4, seed=0, verbose=0,
                      augment=AugmentConfig(enabled=False), run_eagerly=True)
    with pytest.raises(Killed):
        train(cfg, rows, rows, root, out, callbacks=[_KillAfter(KILL_AFTER)])
    after_kill = pd.read_csv(out / "history.csv")
    with pytest.raises(ValueError) as other_data:
        train(cfg, rows.iloc[:6], rows, root, out)
    seen = _EpochsSeen()
    result = train(cfg, rows, rows, root, out, callbacks=[seen])
    return {"cfg": cfg, "out": out, "after_kill": after_kill, "seen": seen.seen, "result": result,
            "other_data_error": str(other_data.value)}


def test_a_killed_run_resumes_at_the_next_epoch_and_history_has_every_epoch_once(resumed):
    assert resumed["after_kill"]["epoch"].tolist() == list(range(1, KILL_AFTER + 1))
    assert resumed["seen"] == list(range(KILL_AFTER + 1, EPOCHS + 1))
    assert resumed["result"].history["epoch"].tolist() == list(range(1, EPOCHS + 1))
    ckpts = sorted(p.name for p in (resumed["out"] / "checkpoints").iterdir())
    assert ckpts == [f"epoch_{e:03d}.keras" for e in range(1, EPOCHS + 1)]
    assert not (resumed["out"] / "backup").exists()  # cleaned once training completed


def test_the_resumed_run_kept_its_optimizer_state(resumed):
    last = keras.models.load_model(resumed["out"] / "checkpoints" / f"epoch_{EPOCHS:03d}.keras")
    steps_per_epoch = 2  # 8 images, batch 4
    assert int(last.optimizer.iterations.numpy()) == EPOCHS * steps_per_epoch


def test_the_loss_falls_when_overfitting_eight_images(resumed):
    # validation rows = the 8 training images, scored without dropout: the objective the
    # optimiser minimises, free of the dropout noise in the running training loss
    h = resumed["result"].history
    assert h["val_loss"].iloc[-1] < 0.95 * h["val_loss"].iloc[0]
    assert h["rec_loss"].iloc[-1] < 0.6 * h["rec_loss"].iloc[0]
    assert h["loss"].iloc[-1] < h["loss"].iloc[0]


def test_the_best_epoch_by_validation_auc_is_the_saved_model(resumed, data):
    root, rows = data
    r = resumed["result"]
    h = r.history
    assert r.selection_metric == "val_breastbin_auc"
    assert r.best_value == h["val_breastbin_auc"].max()
    assert r.best_epoch == int(h.loc[h["val_breastbin_auc"].idxmax(), "epoch"])
    saved = json.loads((resumed["out"] / "result.json").read_text())
    assert saved["best_epoch"] == r.best_epoch
    a = predict(r.model_path, rows, root)
    b = predict(resumed["out"] / "checkpoints" / f"epoch_{r.best_epoch:03d}.keras", rows, root)
    pd.testing.assert_frame_equal(a, b)


def test_resuming_an_interrupted_run_with_other_rows_is_refused(resumed):
    assert "train_fingerprint" in resumed["other_data_error"]


def test_cli_predict_writes_one_row_per_image_from_a_hive_manifest(resumed, data, tmp_path):
    from pipelines.cli import app

    root, rows = data
    hive = tmp_path / "manifests" / "cohort=hmi" / "split=test"
    hive.mkdir(parents=True)
    rows.to_parquet(hive / "part-0.parquet", index=False)
    out = tmp_path / "preds.parquet"
    res = CliRunner().invoke(app, ["predict", "--model", str(resumed["result"].model_path),
                                   "--manifest", str(tmp_path / "manifests"), "--image-root", str(root),
                                   "--split", "test", "--out", str(out)])
    assert res.exit_code == 0, res.output
    preds = pd.read_parquet(out)
    assert sorted(preds["image_key"]) == sorted(rows["image_key"])
    assert preds["p_breastbin"].between(0, 1).all()


def test_baseline_ensemble_trains_one_run_per_seed_and_mc_dropout_predicts(data, tmp_path):
    root, rows = data
    cfg = single_task_config(TrainConfig(height=128, width=64, epochs=1, batch_size=4, verbose=0,
                                         run_eagerly=True))
    assert cfg.architecture == "single_task" and cfg.tasks == ("breastbin",)
    results = train_ensemble(cfg, rows, rows, root, tmp_path, seeds=(0, 1))
    assert [r.out_dir.name for r in results] == ["seed_0", "seed_1"]
    weights = [keras.models.load_model(r.model_path).get_layer("breastbin").get_weights()[0] for r in results]
    assert not np.allclose(weights[0], weights[1])  # seeds differ
    mc = mc_dropout_predict(results[0].model_path, rows, root, passes=3)
    assert list(mc.columns) == ["image_key", "breast_key", "p_breastbin", "p_breastbin_sd"]


def test_cli_train_runs_in_graph_mode_and_publishes_under_mammo_home(data, tmp_path, monkeypatch):
    from pipelines.cli import app

    root, rows = data
    monkeypatch.setenv("MAMMO_HOME", str(tmp_path / "home"))
    rows.to_parquet(tmp_path / "train.parquet", index=False)
    (tmp_path / "cfg.yaml").write_text("tasks: [view]\nheight: 128\nwidth: 64\nbatch_size: 4\nverbose: 0\n")
    res = CliRunner().invoke(app, ["train", "--manifest", str(tmp_path / "train.parquet"), "--config",
                                   str(tmp_path / "cfg.yaml"), "--epochs", "1", "--run-id", "cli-run",
                                   "--image-root", str(root), "--no-export"])  # export: test_model.py
    assert res.exit_code == 0, res.output
    run = tmp_path / "home" / "models" / "cli-run"
    assert (run / "model.keras").is_file() and not (run / "saved_model").exists()
    assert pd.read_csv(run / "history.csv")["epoch"].tolist() == [1]
    assert json.loads((run / "result.json").read_text())["selection_metric"] == "loss"  # no validation rows
    bad = CliRunner().invoke(app, ["train", "--manifest", str(tmp_path / "train.parquet"), "--height", "100",
                                   "--image-root", str(root)])
    assert bad.exit_code != 0 and "height" in bad.output
