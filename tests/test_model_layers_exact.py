"""The fast formulations compute what the slow ones did, and a .keras file loads with
``import model`` alone."""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np
from keras import layers

from model.layers import InstanceNormalization, UpsampleConv2D


def test_upsample_conv_equals_upsampling_then_a_3x3_convolution():
    rng = np.random.default_rng(0)
    x = rng.random((2, 5, 3, 4)).astype("float32")
    fast = UpsampleConv2D(2, activation="sigmoid")
    fast(x)
    fast.set_weights([rng.normal(size=(3, 3, 4, 2)).astype("float32"), np.array([0.3, -0.2], "float32")])
    slow = layers.Conv2D(2, 3, padding="same", activation="sigmoid")
    slow(layers.UpSampling2D(2)(x))
    slow.set_weights(fast.get_weights())
    np.testing.assert_allclose(fast(x), slow(layers.UpSampling2D(2)(x)), atol=1e-5)


def test_one_pass_instance_norm_equals_the_two_pass_definition():
    rng = np.random.default_rng(1)
    x = (3.0 + 2.0 * rng.standard_normal((2, 8, 6, 3))).astype("float32")
    norm = InstanceNormalization()
    norm(x)
    gamma, beta = rng.random(3).astype("float32") + 0.5, rng.standard_normal(3).astype("float32")
    norm.set_weights([gamma, beta])
    mean = x.mean(axis=(1, 2), keepdims=True)
    want = (x - mean) / np.sqrt(x.var(axis=(1, 2), keepdims=True) + 1e-5) * gamma + beta
    np.testing.assert_allclose(norm(x), want, atol=1e-4)


def test_a_keras_file_loads_in_a_fresh_process_with_only_import_model(tmp_path):
    from model.network import build_mtl_model

    path = tmp_path / "m.keras"
    build_mtl_model(height=64, width=64).save(path)
    load = f"m = keras.models.load_model({str(path)!r}, compile=False); print(sorted(m.output_names))"
    ok = subprocess.run([sys.executable, "-c", f"import model, keras; {load}"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "'rec'" in ok.stdout and "'breastbin'" in ok.stdout
    # and the control: without `import model` Keras cannot find the mammo> classes
    bare = subprocess.run([sys.executable, "-c", f"import keras; {load}"], capture_output=True, text=True)
    assert bare.returncode != 0 and "InstanceNormalization" in bare.stderr
