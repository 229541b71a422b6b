"""Unit tests of the network, its losses, the input pipeline, prediction and export.

Tiny inputs (64-128 px) so the whole file runs in well under a minute on 2 CPU cores.
"""

from __future__ import annotations

import json

import cv2
import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from pydantic import ValidationError

from model.baselines import build_baseline, ensemble_predict
from model.config import AugmentConfig, ModelConfig, TrainConfig
from model.data import augment, check_rows, encode_targets, load_image, make_dataset
from model.export import publish
from model.layers import InstanceNormalization, L2Normalize
from model.losses import task_losses
from model.network import build_mtl_model
from model.predict import predict
from model.synthetic import write_synthetic_cache

LABEL_TASKS = ("breastbin", "acr", "density", "view")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    rows = write_synthetic_cache(root, 6, height=128, width=64, seed=3)
    return root, rows


@pytest.fixture(scope="module")
def small_model():
    keras.utils.set_random_seed(0)
    return build_mtl_model(ModelConfig(height=128, width=64))


# --- config --------------------------------------------------------------------------------
@pytest.mark.parametrize("fields, field", [
    ({"height": 100}, "height"),
    ({"width": 65}, "width"),
    ({"tasks": ["breastbin", "birads"]}, "tasks"),
    ({"class_weights": {"acr": [1, 1, 1, 20, 20]}}, "class_weights"),
    ({"tasks": ["breastbin"], "task_factors": {"acr": 2.0}}, "task_factors"),
    ({"epochs": 0}, "epochs"),
    ({"learning_rate": 1e-3, "optimizer": "sgd"}, "optimizer"),
])
def test_a_bad_config_fails_fast_naming_the_field(fields, field):
    with pytest.raises(ValidationError) as exc:
        TrainConfig(**fields)
    assert field in str(exc.value)


def test_tasks_are_put_in_canonical_order_so_equal_configs_hash_equal():
    a = TrainConfig(tasks=["view", "breastbin"])
    b = TrainConfig(tasks="breastbin,view")
    assert a.tasks == ("breastbin", "view") and a.config_hash() == b.config_hash()
    assert TrainConfig(tasks=["view"]).config_hash() != a.config_hash()


def test_best_epoch_is_chosen_on_breastbin_auc_when_breastbin_is_trained():
    assert TrainConfig().resolved_selection(has_val=True) == ("val_breastbin_auc", "max")
    assert TrainConfig(tasks=["density", "rec"]).resolved_selection(has_val=True) == ("val_loss", "min")
    assert TrainConfig().resolved_selection(has_val=False) == ("loss", "min")


# --- network -------------------------------------------------------------------------------
@pytest.mark.parametrize("height, width", [(64, 64), (128, 64), (64, 192)])
def test_outputs_have_the_task_shapes_and_rec_the_input_shape(height, width):
    m = build_mtl_model(height=height, width=width)
    out = m(np.zeros((2, height, width, 1), np.float32), training=False)
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "breastbin": (2, 2), "acr": (2, 6), "density": (2, 4), "view": (2, 2), "rec": (2, height, width, 1)}
    assert m.get_layer("z").output.shape[-1] == 496


def test_any_subset_of_tasks_builds_only_those_heads():
    m = build_mtl_model(height=64, width=64, tasks=["view", "rec"])
    assert sorted(m.output_names) == ["rec", "view"]
    assert sorted(build_mtl_model(height=64, width=64, tasks=["density"]).output_names) == ["density"]


def test_encoder_has_five_levels_of_two_separable_residual_blocks(small_model):
    names = [layer.name for layer in small_model.layers]
    for level in range(1, 6):
        assert f"enc{level}_b1_conv1" in names and f"enc{level}_b2_conv2" in names
        assert isinstance(small_model.get_layer(f"enc{level}_b1_conv1"), keras.layers.SeparableConv2D)
        assert isinstance(small_model.get_layer(f"g{level}_l2"), L2Normalize)
    assert [small_model.get_layer(f"enc{i}_b2_out").output.shape[-1] for i in range(1, 6)] == [16, 32, 64, 128, 256]
    assert not any(n.startswith("enc6") for n in names)
    # narrower decoder, one block per level
    assert [small_model.get_layer(f"dec{i}_b1_out").output.shape[-1] for i in range(1, 6)] == [128, 64, 32, 16, 8]


def test_instance_normalisation_standardises_each_image_and_channel():
    x = np.random.default_rng(0).normal(3.0, 5.0, (2, 8, 8, 3)).astype(np.float32)
    y = np.asarray(InstanceNormalization()(x))
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=(1, 2)), 1.0, atol=1e-3)


# --- losses (paper eq. 1-3) ----------------------------------------------------------------
def _grads(model, x, targets, tasks=LABEL_TASKS):
    losses = task_losses(tasks)
    with tf.GradientTape() as tape:
        out = model(x, training=False)
        loss = tf.add_n([losses[t](targets[t], out[t]) for t in tasks])
    return loss, tape.gradient(loss, model.trainable_variables)


def _targets(classes, w):
    return {t: np.array([[c, w]], np.float32) for t, c in zip(LABEL_TASKS, classes)}


def test_a_sample_whose_labels_are_all_missing_contributes_exactly_zero_gradient(small_model):
    x = np.random.default_rng(1).random((1, 128, 64, 1), dtype=np.float32)
    loss, grads = _grads(small_model, x, _targets((1, 3, 2, 1), 0.0))
    assert float(loss) == 0.0
    assert all(g is None or not np.any(np.asarray(g)) for g in grads)
    _, labelled = _grads(small_model, x, _targets((1, 3, 2, 1), 1.0))
    assert any(g is not None and np.any(np.asarray(g)) for g in labelled)


def test_uncertainty_one_half_halves_that_samples_gradient(small_model):
    x = np.random.default_rng(2).random((1, 128, 64, 1), dtype=np.float32)
    loss_1, g_1 = _grads(small_model, x, _targets((0, 1, 3, 0), 1.0))
    loss_h, g_h = _grads(small_model, x, _targets((0, 1, 3, 0), 0.5))
    assert float(loss_h) == pytest.approx(0.5 * float(loss_1), rel=1e-6)
    for a, b in zip(g_1, g_h):
        if a is not None:
            np.testing.assert_allclose(np.asarray(b), 0.5 * np.asarray(a), rtol=1e-4, atol=1e-9)


def test_class_weights_multiply_the_loss_of_that_class_only(small_model):
    x = np.zeros((2, 128, 64, 1), np.float32)
    out = small_model(x, training=False)["acr"]
    y = np.array([[3, 1.0], [0, 1.0]], np.float32)  # ACR 4 and ACR 1
    plain = task_losses(["acr"])["acr"]
    weighted = task_losses(["acr"], {"acr": (1, 1, 1, 20, 20, 1)})["acr"]
    per_sample = np.asarray(keras.losses.sparse_categorical_crossentropy(y[:, 0], out))
    assert float(plain(y, out)) == pytest.approx(per_sample.mean(), rel=1e-5)
    assert float(weighted(y, out)) == pytest.approx((20 * per_sample[0] + per_sample[1]) / 2, rel=1e-5)


# --- targets and input pipeline ------------------------------------------------------------
def test_missing_labels_get_weight_zero_whatever_the_weight_column_says():
    rows = pd.DataFrame({"image_key": ["a", "b", "c"], "density": ["B", None, "D"],
                         "density_u": [0.25, None, 0.0], "density_weight": [0.75, 1.0, 1.0]})
    packed = encode_targets(rows, ["density"])["density"]
    np.testing.assert_array_equal(packed, [[1, 0.75], [0, 0.0], [3, 1.0]])
    no_weight = encode_targets(rows.drop(columns="density_weight"), ["density"])["density"]
    np.testing.assert_allclose(no_weight[:, 1], [0.75, 0.0, 1.0])


def test_a_label_outside_the_vocabulary_is_refused_naming_the_column():
    rows = pd.DataFrame({"image_key": ["a"], "acr": [7]})
    with pytest.raises(ValueError, match="'acr'"):
        encode_targets(rows, ["acr"])
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        encode_targets(pd.DataFrame({"image_key": ["a"], "view": ["CC"], "view_weight": [1.5]}), ["view"])


def test_missing_cache_files_are_reported_by_image_key(cache):
    root, rows = cache
    bad = rows.copy()
    bad.loc[1, "cache_path"] = "synthetic/nope.png"
    with pytest.raises(FileNotFoundError, match=bad.loc[1, "image_key"]):
        check_rows(bad, root)


def test_width_is_cropped_and_padded_on_the_right_keeping_the_chest_wall(tmp_path):
    img = (np.arange(64 * 96, dtype=np.uint16).reshape(64, 96) % 60000).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "wide.png"), img)
    cropped = load_image(tf.constant(str(tmp_path / "wide.png")), 64, 64).numpy()[..., 0]
    np.testing.assert_array_equal(cropped, (img[:, :64] / 65535.0).astype(np.float32))
    padded = load_image(tf.constant(str(tmp_path / "wide.png")), 64, 128).numpy()[..., 0]
    np.testing.assert_array_equal(padded[:, :96], (img / 65535.0).astype(np.float32))
    assert not padded[:, 96:].any()
    resized = load_image(tf.constant(str(tmp_path / "wide.png")), 128, 256).numpy()
    assert resized.shape == (128, 256, 1) and resized[:, :192].any() and not resized[:, 192:].any()


def test_augmentation_is_vertical_flip_only_when_translation_and_zoom_are_off():
    img = tf.constant(np.random.default_rng(0).random((64, 64, 1), dtype=np.float32))
    flip_only = AugmentConfig(p=1.0, max_translate=0.0, max_zoom=0.0)
    np.testing.assert_allclose(augment(img, tf.constant([1, 2], tf.int64), flip_only).numpy(),
                               img.numpy()[::-1], atol=1e-6)
    never = AugmentConfig(p=0.0)
    np.testing.assert_allclose(augment(img, tf.constant([1, 2], tf.int64), never).numpy(), img.numpy(), atol=1e-6)


def test_augmentation_never_flips_left_right():
    # a bright left half (chest wall side) must stay on the left under any draw
    img = np.zeros((64, 64, 1), np.float32)
    img[:, :32] = 1.0
    cfg = AugmentConfig(p=1.0)
    for s in range(20):
        out = augment(tf.constant(img), tf.constant([s, 0], tf.int64), cfg).numpy()
        assert out[:, :24].mean() > out[:, 40:].mean()


def test_the_same_seed_reproduces_the_augmented_stream_and_epochs_differ(cache):
    root, rows = cache
    kw = dict(height=128, width=64, tasks=LABEL_TASKS + ("rec",), batch_size=3, training=True,
              augment_cfg=AugmentConfig(), seed=7)
    ds1, ds2 = make_dataset(rows, root, **kw), make_dataset(rows, root, **kw)
    e1 = [x.numpy() for x, _ in ds1]
    e2 = [x.numpy() for x, _ in ds1]
    f1 = [x.numpy() for x, _ in ds2]
    assert all(np.array_equal(a, b) for a, b in zip(e1, f1))
    assert not all(np.array_equal(a, b) for a, b in zip(e1, e2))
    _, y = next(iter(ds1))
    assert set(y) == set(LABEL_TASKS) | {"rec"} and y["rec"].shape == (3, 128, 64, 1)


# --- predict, baselines, export -------------------------------------------------------------
def test_predict_returns_contract_columns_in_row_order_with_latent(cache, small_model, tmp_path):
    root, rows = cache
    path = tmp_path / "m.keras"
    small_model.save(path)
    df = predict(path, rows.iloc[::-1], root, return_latent=True, batch_size=4)
    assert df["image_key"].tolist() == rows["image_key"].tolist()[::-1]
    expected = (["image_key", "breast_key", "p_breastbin"] + [f"p_acr_{i}" for i in range(1, 7)]
                + [f"p_density_{c}" for c in "ABCD"] + ["p_view_MLO"] + [f"z_{i}" for i in range(496)])
    assert list(df.columns) == expected
    acr = df[[f"p_acr_{i}" for i in range(1, 7)]].to_numpy()
    np.testing.assert_allclose(acr.sum(axis=1), 1.0, rtol=1e-5)
    z = df[[f"z_{i}" for i in range(496)]].to_numpy()
    # five L2-normalised blocks, each rescaled to unit RMS (x sqrt(d_i)): |z_i|^2 = d_i for every
    # level whose pooled features are non-zero, so |z|^2 <= 16 + 32 + 64 + 128 + 256 = 496
    blocks = np.split(z, np.cumsum([16, 32, 64, 128])[:], axis=1)
    for block, d in zip(blocks, (16, 32, 64, 128, 256)):
        norms = np.sum(block ** 2, axis=1)
        assert np.all((np.abs(norms - d) < 1e-2 * d) | (norms < 1e-6))


def test_mc_dropout_averages_distinct_passes_reproducibly(cache, small_model, tmp_path):
    root, rows = cache
    path = tmp_path / "m.keras"
    small_model.save(path)
    a = predict(path, rows, root, mc_passes=4, seed=1)
    b = predict(path, rows, root, mc_passes=4, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert (a["p_breastbin_sd"] > 0).all()


def test_single_task_baseline_has_no_fusion_and_ensembles_average_members(cache, tmp_path):
    root, rows = cache
    paths = []
    for seed in (0, 1):
        keras.utils.set_random_seed(seed)
        m = build_baseline("breastbin", height=128, width=64)
        assert m.output_names == ["breastbin"]
        with pytest.raises(ValueError):
            m.get_layer("z")
        paths.append(tmp_path / f"b{seed}.keras")
        m.save(paths[-1])
    singles = [predict(p, rows, root) for p in paths]
    assert list(singles[0].columns) == ["image_key", "breast_key", "p_breastbin"]
    ens = ensemble_predict(paths, rows, root)
    np.testing.assert_allclose(ens["p_breastbin"], (singles[0]["p_breastbin"] + singles[1]["p_breastbin"]) / 2)
    with pytest.raises(ValueError, match="z"):
        predict(paths[0], rows, root, return_latent=True)


def test_saved_model_serving_signature_returns_the_same_probabilities(small_model, tmp_path, monkeypatch):
    monkeypatch.setenv("MAMMO_HOME", str(tmp_path / "home"))
    small_model.save(tmp_path / "m.keras")
    out = publish(tmp_path / "m.keras", "run-1")
    assert out["keras"] == tmp_path / "home" / "models" / "run-1" / "model.keras"
    serving = tf.saved_model.load(str(out["saved_model"])).signatures["serving_default"]
    x = np.random.default_rng(3).random((2, 128, 64, 1), dtype=np.float32)
    got = serving(image=tf.constant(x))
    want = small_model(x, training=False)
    assert set(got) == set(LABEL_TASKS)
    for t in LABEL_TASKS:
        # float32 graph vs eager: reductions (instance norm) may sum in another order
        np.testing.assert_allclose(got[t].numpy(), np.asarray(want[t]), rtol=1e-4, atol=1e-5)
    meta = json.loads((out["saved_model"] / "serving_meta.json").read_text())
    assert meta["outputs"]["density"] == ["A", "B", "C", "D"] and meta["input"]["shape"] == [None, 128, 64, 1]
    with pytest.raises(ValueError, match="run_id"):
        publish(tmp_path / "m.keras", "../escape")


def test_mixed_precision_keeps_heads_and_reconstruction_in_float32():
    from model.train import _precision

    with _precision(True):
        m = build_mtl_model(height=64, width=64)
        assert m.get_layer("enc3_b1_conv1").compute_dtype == "float16"
    assert keras.config.dtype_policy().name == "float32"  # restored for the next run
    out = m(np.random.default_rng(0).random((1, 64, 64, 1), dtype=np.float32), training=False)
    assert {str(v.dtype) for v in out.values()} == {"<dtype: 'float32'>"}
    np.testing.assert_allclose(np.asarray(out["density"]).sum(), 1.0, rtol=1e-3)


def test_unit_norm_latent_reproduces_the_papers_plain_l2_normalisation():
    from model.config import ModelConfig
    from model.network import build_mtl_model

    model = build_mtl_model(ModelConfig(height=128, width=64, latent_scale="unit_norm"))
    assert not any(layer.name.endswith("_rms") for layer in model.layers)
    model = build_mtl_model(ModelConfig(height=128, width=64))
    assert sum(layer.name.endswith("_rms") for layer in model.layers) == 5
