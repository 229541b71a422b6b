"""Training loop: Adam 1e-3, a checkpoint every epoch, resume after a kill, best epoch
picked on a validation metric, history saved.

``out_dir`` layout::

    run.json                config + fingerprint of the training rows (guards resume)
    checkpoints/epoch_NNN.keras   one per finished epoch
    backup/                 Keras BackupAndRestore state (weights + optimizer + epoch);
                            deleted when training completes
    history.csv             one row per epoch (1-based), rewritten on resume without duplicates
    model.keras             copy of the best epoch's checkpoint
    result.json             best epoch, selection metric and value

A run killed at any point is resumed by calling :func:`train` again with the same
arguments: it restarts from the last finished epoch with the optimizer state intact.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from model.config import TrainConfig
from model.data import check_rows, count_cut, encode_targets, fit_width, make_dataset, tissue_widths
from model.losses import task_losses, weighted_ce_numpy
from model.network import build_mtl_model

log = logging.getLogger(__name__)

HISTORY_FILE = "history.csv"
MODEL_FILE = "model.keras"


@dataclass(frozen=True)
class TrainResult:
    model_path: Path
    history: pd.DataFrame
    best_epoch: int  # 1-based
    selection_metric: str
    best_value: float
    out_dir: Path
    config: TrainConfig
    transferred_layers: int = 0  # layers initialised from init_model
    tissue_cut: int = 0  # training images whose tissue the width cuts (0 with width="auto")
    selected_on_validation: bool = True


NO_VALIDATION_WARNING = ("no validation rows: the best epoch is chosen on the TRAINING loss, which rewards "
                         "overfitting; pass validation rows (a 'val' split) to select on held-out data")


# --- validation metrics ------------------------------------------------------------------
def _auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(y, score)) if len(np.unique(y)) == 2 else float("nan")


def _bacc(y: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import balanced_accuracy_score
    if not len(y):
        return float("nan")
    with warnings.catch_warnings():  # predicting a class absent from validation is expected early on
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(y, pred))


def validation_metrics(model: keras.Model, ds: tf.data.Dataset, targets: dict[str, np.ndarray],
                       config: TrainConfig, forward=None) -> dict[str, float]:
    """Loss (the training objective, on un-augmented validation images) and the paper's
    metrics: AUC for breastbin and view, balanced accuracy for ACR and density, over the
    rows whose label is present (w > 0)."""
    probs: dict[str, list[np.ndarray]] = {t: [] for t in config.label_tasks}
    sq_err: list[np.ndarray] = []
    forward = forward or (lambda x: model(x, training=False))
    for x, y in ds:
        out = forward(x)
        for t in config.label_tasks:
            probs[t].append(np.asarray(out[t], dtype=np.float64))
        if "rec" in config.tasks:
            d = np.asarray(out["rec"], dtype=np.float64) - np.asarray(y["rec"], dtype=np.float64)
            sq_err.append(np.mean(d * d, axis=(1, 2, 3)))
    logs: dict[str, float] = {}
    total = 0.0
    for t in config.label_tasks:
        p = np.concatenate(probs[t])
        packed = targets[t]
        loss = weighted_ce_numpy(p, packed, config.class_weights.get(t))
        logs[f"val_{t}_loss"] = loss
        total += config.task_factors.get(t, 1.0) * loss
        keep = packed[:, 1] > 0
        y_true = packed[keep, 0].astype(int)
        if t in ("breastbin", "view"):
            logs[f"val_{t}_auc"] = _auc(y_true, p[keep, 1])
        else:
            logs[f"val_{t}_bacc"] = _bacc(y_true, p[keep].argmax(axis=1))
    if "rec" in config.tasks:
        mse = float(np.mean(np.concatenate(sq_err)))
        logs["val_rec_loss"] = mse
        total += config.task_factors.get("rec", 1.0) * mse
    logs["val_loss"] = total
    return logs


class _ValidationCallback(keras.callbacks.Callback):
    def __init__(self, ds, targets, config, n_rows: int):
        super().__init__()
        self.ds, self.targets, self.config, self.n_rows = ds, targets, config, n_rows

    def on_train_begin(self, logs=None):
        # a graph traced once for the whole run pays off beyond a few batches; a tiny
        # validation set is cheaper eagerly than tracing
        n_batches = -(-self.n_rows // self.config.batch_size)
        m = self.model
        self.forward = (tf.function(lambda x: m(x, training=False)) if n_batches > 16 and not self.config.run_eagerly
                        else None)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(validation_metrics(self.model, self.ds, self.targets, self.config, self.forward))


class _HistoryWriter(keras.callbacks.Callback):
    """history.csv with one row per epoch; a resumed run replaces rows of epochs it re-ran."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        old = pd.read_csv(self.path) if self.path.exists() else pd.DataFrame()
        if len(old):
            old = old[old["epoch"] < epoch + 1]
        df = pd.concat([old, pd.DataFrame([row])], ignore_index=True)
        tmp = self.path.with_suffix(".tmp")
        df.to_csv(tmp, index=False)
        tmp.replace(self.path)


# --- helpers -----------------------------------------------------------------------------
def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name in ("multi_worker", "multi_worker_mirrored"):
        # cluster layout comes from the TF_CONFIG environment variable; model.distribute makes Keras 3 fit work
        from model.distribute import multi_worker_strategy

        return multi_worker_strategy()
    return tf.distribute.get_strategy()


def _is_chief(strategy: tf.distribute.Strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0)


def rows_fingerprint(rows: pd.DataFrame, tasks: Sequence[str]) -> str:
    h = hashlib.sha256()
    h.update("\n".join(map(str, rows["image_key"])).encode())
    for t, arr in sorted(encode_targets(rows, tasks).items()):
        h.update(t.encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


def transfer_weights(source: str | Path, target: keras.Model) -> int:
    """Copy weights layer by layer (matched by name and shape) from a saved model —
    fine-tuning may switch tasks or image size, which a plain load would refuse."""
    src = keras.models.load_model(source, compile=False)
    n = 0
    for layer in target.layers:
        try:
            s = src.get_layer(layer.name)
        except ValueError:
            continue
        sw, tw = s.get_weights(), layer.get_weights()
        if tw and len(sw) == len(tw) and all(a.shape == b.shape for a, b in zip(sw, tw)):
            layer.set_weights(sw)
            n += 1
    if n == 0:
        raise ValueError(f"init_model {source} shares no layer (by name and shape) with the new network")
    return n


@contextlib.contextmanager
def _precision(mixed: bool):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16" if mixed else "float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def select_best(history: pd.DataFrame, metric: str, mode: str) -> tuple[int, float, str]:
    """(best epoch, its value, metric actually used). Falls back to ``val_loss``/``loss``
    when the requested metric is undefined every epoch (e.g. one class in validation)."""
    for m in (metric, "val_loss", "loss"):
        if m in history and history[m].notna().any():
            values = history[m].to_numpy(dtype=float)
            mode_m = mode if m == metric else "min"
            scores = np.where(np.isnan(values), -np.inf if mode_m == "max" else np.inf, values)
            i = int(np.argmax(scores) if mode_m == "max" else np.argmin(scores))  # first best on ties
            return int(history["epoch"].iloc[i]), float(values[i]), m
    raise ValueError(f"history has no usable selection metric {metric!r}")


def resolve_width(config: TrainConfig, train_rows: pd.DataFrame, val_rows: pd.DataFrame | None,
                  image_root: Path) -> tuple[TrainConfig, dict]:
    """A concrete width for ``config`` and how many images it cuts.

    ``width="auto"`` becomes the smallest multiple of 64 holding every training image's tissue;
    a fixed width is kept, with a warning naming how many images lose tissue.
    """
    widths = tissue_widths(train_rows, image_root, config.height)
    requested = config.width
    if requested == "auto":
        config = config.with_width(fit_width(widths))
    info = {"width_requested": requested, "tissue_width_max": int(widths.max(initial=0)),
            "tissue_cut_train": count_cut(widths, config.width), "tissue_cut_val": 0}
    if val_rows is not None:
        info["tissue_cut_val"] = count_cut(tissue_widths(val_rows, image_root, config.height), config.width)
    cut = info["tissue_cut_train"] + info["tissue_cut_val"]
    if cut:
        msg = (f"width={config.width} cuts breast tissue in {info['tissue_cut_train']} of {len(train_rows)} "
               f"training and {info['tissue_cut_val']} validation image(s) (tissue reaches "
               f"{info['tissue_width_max']} px at H={config.height}); use width='auto' or "
               f"width={fit_width(widths)} to keep it all")
        warnings.warn(msg, UserWarning, stacklevel=3)
        log.warning(msg)
    return config, info


# --- the entry point ---------------------------------------------------------------------
def train(config: TrainConfig, train_rows: pd.DataFrame, val_rows: pd.DataFrame | None, image_root: Path,
          out_dir: Path, init_model: Path | None = None, *,
          callbacks: Sequence[keras.callbacks.Callback] = ()) -> TrainResult:
    """Train (or resume training) the network described by ``config``; see module doc."""
    if not isinstance(config, TrainConfig):
        config = TrainConfig.model_validate(config)
    out_dir = Path(out_dir)
    image_root = Path(image_root)
    check_rows(train_rows, image_root)
    has_val = val_rows is not None and len(val_rows) > 0
    if has_val:
        check_rows(val_rows, image_root)
    metric, mode = config.resolved_selection(has_val)
    if not has_val:
        warnings.warn(NO_VALIDATION_WARNING, UserWarning, stacklevel=2)
        log.warning(NO_VALIDATION_WARNING)
    train_rows = train_rows.reset_index(drop=True)
    config, tissue = resolve_width(config, train_rows, val_rows if has_val else None, image_root)

    out_dir.mkdir(parents=True, exist_ok=True)
    backup_dir = out_dir / "backup"
    run_info = {"config_hash": config.config_hash(), "config": config.model_dump(mode="json"),
                "train_fingerprint": rows_fingerprint(train_rows, config.tasks),
                "val_fingerprint": rows_fingerprint(val_rows.reset_index(drop=True), config.tasks) if has_val else None,
                "init_model": str(init_model) if init_model else None, "width": config.width, **tissue}
    run_json = out_dir / "run.json"
    if backup_dir.exists() and run_json.exists():
        old = json.loads(run_json.read_text())
        changed = [k for k in ("config_hash", "train_fingerprint", "val_fingerprint", "init_model")
                   if old.get(k) != run_info[k]]
        if changed:
            raise ValueError(f"{out_dir} holds an interrupted run whose {changed} differ from this call; "
                             f"resume with the same arguments, or use a new out_dir")
    elif not backup_dir.exists():
        # a fresh run: no stale epochs from an earlier run in this folder
        for stale in (out_dir / HISTORY_FILE, out_dir / MODEL_FILE, out_dir / "result.json"):
            stale.unlink(missing_ok=True)
        shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
    run_json.write_text(json.dumps(run_info, indent=2, sort_keys=True))

    keras.utils.set_random_seed(config.seed)
    if config.deterministic_ops:
        tf.config.experimental.enable_op_determinism()

    with _precision(config.mixed_precision):
        strategy = make_strategy(config.strategy)
        chief = _is_chief(strategy)
        work_dir = out_dir if chief else out_dir / f"_worker_{strategy.cluster_resolver.task_id}"
        work_dir.mkdir(parents=True, exist_ok=True)
        replicas = strategy.num_replicas_in_sync
        with strategy.scope():
            model = build_mtl_model(config.model_cfg())
            transferred = transfer_weights(init_model, model) if init_model else 0
            model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                          loss=task_losses(config.tasks, config.class_weights),
                          loss_weights={t: config.task_factors.get(t, 1.0) for t in config.tasks},
                          jit_compile=False if config.run_eagerly else config.jit_compile,
                          run_eagerly=config.run_eagerly)

        train_ds = make_dataset(train_rows, image_root, height=config.height, width=config.width,
                                tasks=config.tasks, batch_size=config.batch_size, training=True,
                                augment_cfg=config.augment, seed=config.seed,
                                shuffle_buffer=config.shuffle_buffer, drop_remainder=replicas > 1,
                                threads=config.input_threads)
        if replicas > 1:
            opts = tf.data.Options()
            opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
            train_ds = train_ds.with_options(opts)

        cbs: list[keras.callbacks.Callback] = []
        if has_val:
            val_rows = val_rows.reset_index(drop=True)
            val_ds = make_dataset(val_rows, image_root, height=config.height, width=config.width,
                                  tasks=config.tasks, batch_size=config.batch_size, training=False,
                                  threads=config.input_threads)
            cbs.append(_ValidationCallback(val_ds, encode_targets(val_rows, config.tasks), config, len(val_rows)))
        (work_dir / "checkpoints").mkdir(exist_ok=True)
        cbs += [
            keras.callbacks.ModelCheckpoint(str(work_dir / "checkpoints" / "epoch_{epoch:03d}.keras"),
                                            save_freq="epoch", verbose=0),
            _HistoryWriter(work_dir / HISTORY_FILE),
            keras.callbacks.TerminateOnNaN(),
            # last among ours: the backup marks an epoch finished only once its
            # checkpoint and history row exist
            keras.callbacks.BackupAndRestore(str(work_dir / "backup")),
            *callbacks,
        ]
        model.fit(train_ds, epochs=config.epochs, callbacks=cbs, verbose=config.verbose, shuffle=False)

    history = pd.read_csv(work_dir / HISTORY_FILE)
    if len(history) != config.epochs or history["loss"].isna().any() or not np.isfinite(history["loss"]).all():
        raise RuntimeError(f"training stopped early ({len(history)}/{config.epochs} epochs, last loss "
                           f"{history['loss'].iloc[-1] if len(history) else 'n/a'}); see {work_dir / HISTORY_FILE}")
    best_epoch, best_value, used = select_best(history, metric, mode)
    model_path = work_dir / MODEL_FILE
    shutil.copyfile(work_dir / "checkpoints" / f"epoch_{best_epoch:03d}.keras", model_path)
    if used != metric:
        log.warning("selection metric %s undefined in every epoch; selected on %s", metric, used)
    result = {"best_epoch": best_epoch, "selection_metric": used, "best_value": best_value,
              "config_hash": config.config_hash(), "epochs": config.epochs,
              "transferred_layers": transferred, "width": config.width, **tissue,
              "selected_on_validation": has_val, "selection_warning": None if has_val else NO_VALIDATION_WARNING}
    (work_dir / "result.json").write_text(json.dumps(result, indent=2, sort_keys=True,
                                                     default=lambda v: None if isinstance(v, float) and math.isnan(v) else v))
    return TrainResult(model_path=model_path, history=history, best_epoch=best_epoch, selection_metric=used,
                       best_value=best_value, out_dir=work_dir, config=config, transferred_layers=transferred,
                       tissue_cut=tissue["tissue_cut_train"], selected_on_validation=has_val)
