"""tf.data input from manifest rows and the 16-bit PNG cache.

Streaming: only the row metadata (paths, label indices, weights — a few bytes per
image) is held in memory and shuffled; pixels are read, decoded and augmented in
parallel per batch and prefetched, so memory does not grow with the dataset.

Geometry: the cache stores the breast facing left at height H. An image whose height
differs is resized to H keeping its aspect ratio; the width is then cropped or padded
*on the right* to W — the chest wall is on the left, so what a crop cuts is the side away
from it. That is background only when W covers the tissue: a large breast (or a real film
with little background) is wider than the 0.5·H many CPU budgets use. :func:`tissue_widths`
measures how far tissue reaches in each image, :func:`fit_width` turns that into the
smallest multiple of 64 that cuts nothing (``TrainConfig.width="auto"``), and
:func:`count_cut` counts the images a fixed W would cut — training warns with that count
and records it in the run (``model.train``).

Augmentation (train only, paper 2.4): random translation, zoom and vertical flip, each
applied with probability p = 0.5. No horizontal flip (it would put the chest wall on
the right, a layout the model never sees at test time) and no shear. Random draws are
stateless and seeded per element, so a seed reproduces the exact augmented stream.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from curation.tasks import LABEL_TASKS, class_index
from model.config import AugmentConfig

REQUIRED_COLUMNS = ("image_key", "cache_path")
PNG_MAX = 65535.0  # cache value = round(x * 65535)


# --- manifests -------------------------------------------------------------------------
def read_manifest(path: str | Path) -> pd.DataFrame:
    """A manifest is one Parquet file or a Hive-partitioned directory of them
    (``cohort=<c>/split=<s>/part-*.parquet``); partition columns come back as strings."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"manifest {path} does not exist")
    df = pd.read_parquet(path)
    for col in df.columns:
        if isinstance(df[col].dtype, pd.CategoricalDtype):
            df[col] = df[col].astype(str)
    return df.reset_index(drop=True)


def check_rows(rows: pd.DataFrame, image_root: str | Path) -> None:
    """Fail before training/prediction starts if rows cannot be read, naming what is wrong."""
    missing_cols = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
    if missing_cols:
        raise ValueError(f"manifest rows lack column(s) {missing_cols}; have {list(rows.columns)}")
    if len(rows) == 0:
        raise ValueError("manifest rows are empty")
    if rows["cache_path"].isna().any():
        keys = rows.loc[rows["cache_path"].isna(), "image_key"].head(5).tolist()
        raise ValueError(f"{int(rows['cache_path'].isna().sum())} row(s) have no cache_path, e.g. image_key {keys}")
    root = Path(image_root)
    absent = [k for k, p in zip(rows["image_key"], rows["cache_path"]) if not (root / str(p)).is_file()]
    if absent:
        raise FileNotFoundError(f"{len(absent)} of {len(rows)} cached image(s) are missing under {root}, "
                                f"e.g. image_key {absent[:5]}; re-run preprocessing for them")


def image_paths(rows: pd.DataFrame, image_root: str | Path) -> np.ndarray:
    root = Path(image_root)
    return np.asarray([str(root / str(p)) for p in rows["cache_path"]])


def encode_targets(rows: pd.DataFrame, tasks: Sequence[str]) -> dict[str, np.ndarray]:
    """Per classification task an (N, 2) float32 array ``[class_index, w]``.

    ``w`` is ``<t>_weight`` from the manifest (the contract: 0 exactly when missing, else
    1 - u) or ``1 - <t>_u`` when that column is absent; it is forced to 0 whenever the
    label is missing, whatever the column says — a missing label must never push the
    weights (eq. 2). Missing labels get class index 0 as a placeholder the zero weight
    cancels.
    """
    out: dict[str, np.ndarray] = {}
    for task in tasks:
        if task not in LABEL_TASKS:
            continue
        if task not in rows.columns:
            raise ValueError(f"task {task!r} is enabled but the manifest has no {task!r} column")
        idx = np.zeros(len(rows), dtype=np.float32)
        present = np.zeros(len(rows), dtype=bool)
        bad = []
        for i, v in enumerate(rows[task].tolist()):
            if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
                continue
            try:
                c = class_index(task, v)
            except (ValueError, TypeError):
                bad.append(v)
                continue
            if c is not None:
                idx[i] = c
                present[i] = True
        if bad:
            raise ValueError(f"column {task!r}: {len(bad)} value(s) outside the {task} vocabulary, e.g. {bad[:5]}")
        if f"{task}_weight" in rows.columns:
            w = pd.to_numeric(rows[f"{task}_weight"], errors="coerce").to_numpy(dtype=np.float64)
            source = f"{task}_weight"
        elif f"{task}_u" in rows.columns:
            w = 1.0 - pd.to_numeric(rows[f"{task}_u"], errors="coerce").fillna(0.0).to_numpy(dtype=np.float64)
            source = f"1 - {task}_u"
        else:
            w = np.ones(len(rows))
            source = "1 (no uncertainty column)"
        w = np.where(present, w, 0.0)
        invalid = present & ~((w >= 0.0) & (w <= 1.0))  # NaN fails both comparisons
        if invalid.any():
            keys = rows.loc[invalid, "image_key"].head(5).tolist() if "image_key" in rows else []
            raise ValueError(f"{int(invalid.sum())} labelled row(s) have a weight ({source}) outside [0, 1] "
                             f"for task {task!r}, e.g. image_key {keys}")
        out[task] = np.stack([idx, w.astype(np.float32)], axis=1)
    return out


# --- width ----------------------------------------------------------------------------
def tissue_widths(rows: pd.DataFrame, image_root: str | Path, height: int) -> np.ndarray:
    """Per row, how many columns from the chest wall (left) hold non-zero pixels once the image
    is scaled to ``height`` — what a crop to fewer columns would cut.

    Uses the cache index's ``content_width`` (the width before padding) when the rows carry it;
    otherwise reads each PNG's header size and its right-most non-zero column (zero is the
    cache's background and padding value).
    """
    import cv2

    if "content_width" in rows.columns and "height" in rows.columns and rows["content_width"].notna().all():
        cw = rows["content_width"].to_numpy(dtype=np.float64)
        h = rows["height"].to_numpy(dtype=np.float64)
        return np.ceil(cw * height / h).astype(int)
    out = np.zeros(len(rows), dtype=int)
    for i, path in enumerate(image_paths(rows, image_root)):
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if img is None:
            raise FileNotFoundError(f"cannot read cached image for image_key {rows['image_key'].iloc[i]}")
        cols = np.flatnonzero(img.reshape(img.shape[0], -1).max(axis=0) > 0)
        last = int(cols[-1]) + 1 if len(cols) else 0
        out[i] = int(np.ceil(last * height / img.shape[0]))
    return out


def fit_width(widths: np.ndarray, multiple: int = 64) -> int:
    """The smallest multiple of ``multiple`` that holds every image's tissue."""
    return max(multiple, int(-(-int(np.max(widths, initial=1)) // multiple) * multiple))


def count_cut(widths: np.ndarray, width: int) -> int:
    """How many images would lose tissue when cropped to ``width`` columns."""
    return int(np.sum(np.asarray(widths) > width))


# --- pixels ----------------------------------------------------------------------------
def load_image(path: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Read one cached PNG as float32 in [0, 1], shape (height, width, 1)."""
    img = tf.io.decode_png(tf.io.read_file(path), channels=1, dtype=tf.uint16)
    img = tf.cast(img, tf.float32) / PNG_MAX
    h = tf.shape(img)[0]
    w = tf.shape(img)[1]

    def _resize():
        new_w = tf.maximum(1, tf.cast(tf.round(tf.cast(w, tf.float32) * height / tf.cast(h, tf.float32)), tf.int32))
        return tf.image.resize(img, tf.stack([height, new_w]), method="area")

    img = tf.cond(tf.equal(h, height), lambda: img, _resize)
    img = img[:, :width, :]
    img = tf.pad(img, [[0, 0], [0, width - tf.shape(img)[1]], [0, 0]])
    return tf.ensure_shape(img, (height, width, 1))


def augment(img: tf.Tensor, seed: tf.Tensor, cfg: AugmentConfig) -> tf.Tensor:
    """Random zoom, translation and vertical flip, each with probability ``cfg.p``.

    Zoom = a bilinear resize then a centred crop or zero pad; translation = an integer
    pixel shift with zero fill — zero is the background value of the cache, so no
    artificial edge appears. Both are skipped (no resampling cost, no blur) when not
    drawn, which keeps the input pipeline far cheaper than the training step.
    """
    height, width = int(img.shape[0]), int(img.shape[1])
    r = tf.random.stateless_uniform([6], seed=seed)
    max_dy = int(np.ceil(cfg.max_translate * height))
    max_dx = int(np.ceil(cfg.max_translate * width))

    if cfg.max_zoom > 0:
        def _zoom():
            scale = 1.0 + (2.0 * r[1] - 1.0) * cfg.max_zoom
            size = tf.cast(tf.round(tf.constant([height, width], tf.float32) * scale), tf.int32)
            return tf.image.resize_with_crop_or_pad(tf.image.resize(img, size, method="bilinear"), height, width)
        img = tf.cond(r[0] < cfg.p, _zoom, lambda: img)

    if max_dy or max_dx:
        def _shift():
            dy = tf.cast(tf.round((2.0 * r[3] - 1.0) * max_dy), tf.int32)
            dx = tf.cast(tf.round((2.0 * r[4] - 1.0) * max_dx), tf.int32)
            padded = tf.pad(img, [[max_dy, max_dy], [max_dx, max_dx], [0, 0]])
            # content moves down by dy and right by dx
            return tf.slice(padded, tf.stack([max_dy - dy, max_dx - dx, 0]), [height, width, 1])
        img = tf.cond(r[2] < cfg.p, _shift, lambda: img)

    img = tf.cond(r[5] < cfg.p, lambda: tf.reverse(img, axis=[0]), lambda: img)
    return tf.ensure_shape(img, (height, width, 1))


# --- datasets --------------------------------------------------------------------------
def make_dataset(rows: pd.DataFrame, image_root: str | Path, *, height: int, width: int,
                 tasks: Sequence[str] = (), batch_size: int = 8, training: bool = False,
                 augment_cfg: AugmentConfig | None = None, seed: int = 0, shuffle_buffer: int = 1024,
                 with_targets: bool = True, drop_remainder: bool = False,
                 threads: int | None = None) -> tf.data.Dataset:
    """Batches of ``(image, targets)`` (or just ``image`` when ``with_targets=False``).

    ``targets`` is a dict keyed by task: ``[class_index, w]`` per classification task and
    the (augmented) input image itself for ``rec``.
    """
    paths = image_paths(rows, image_root)
    targets = encode_targets(rows, tasks) if with_targets else {}
    want_rec = with_targets and "rec" in tasks
    # an element is (path, targets); targets is {} for prediction
    ds = tf.data.Dataset.from_tensor_slices((paths, targets) if targets else paths)
    if not targets:
        ds = ds.map(lambda p: (p, {}))
    if training:
        ds = ds.shuffle(min(shuffle_buffer, len(rows)), seed=seed, reshuffle_each_iteration=True)
    aug = augment_cfg if (training and augment_cfg is not None and augment_cfg.enabled) else None

    def _finish(img, tg):
        if not with_targets:
            return img
        return img, ({**tg, "rec": img} if want_rec else tg)

    if aug is not None:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip(ds, seeds)

        def _load(item, r):
            path, tg = item
            img = augment(load_image(path, height, width), tf.stack([r, tf.constant(seed, tf.int64)]), aug)
            return _finish(img, tg)
    else:
        def _load(path, tg):
            return _finish(load_image(path, height, width), tg)

    ds = ds.map(_load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    opts = tf.data.Options()
    # a private pool for decode/augment: with the default (all cores) the input threads
    # fight the training step's own threads and on a small CPU the step time suffers
    # (bench/README_model.md); half the cores keep the pipeline ahead of the step
    opts.threading.private_threadpool_size = threads or default_input_threads()
    opts.threading.max_intra_op_parallelism = 1
    return ds.with_options(opts).prefetch(tf.data.AUTOTUNE)


def default_input_threads() -> int:
    return max(1, (os.cpu_count() or 2) // 2)


def in_memory_dataset(images: np.ndarray, targets: dict[str, np.ndarray], batch_size: int) -> tf.data.Dataset:
    """Same structure from tensors already in memory (benchmark reference)."""
    return tf.data.Dataset.from_tensor_slices((images, targets)).batch(batch_size).prefetch(tf.data.AUTOTUNE)
