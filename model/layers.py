"""Custom layers of the network, serialisable in a ``.keras`` file.

Importing this module registers them under the ``mammo`` package, so
``keras.models.load_model`` needs no ``custom_objects`` once ``model`` is imported.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mammo")
class InstanceNormalization(keras.layers.Layer):
    """Normalise each sample and channel over its spatial axes, then scale and shift.

    Instance (not batch) normalisation: the paper (2.2) chose it because it suits the
    reconstruction decoder, and it makes a prediction independent of the other images in
    the batch — a mammogram's score must not depend on what it was batched with.
    """

    def __init__(self, epsilon: float = 1e-5, center: bool = True, scale: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("InstanceNormalization needs a known channel dimension")
        self.gamma = self.add_weight(shape=(channels,), initializer="ones", name="gamma",
                                     trainable=self.scale) if self.scale else None
        self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta",
                                    trainable=self.center) if self.center else None

    def call(self, x):
        # statistics in float32 even under mixed precision: a variance over 10^6 pixels in
        # float16 loses the contrast that separates dense from fatty tissue
        orig_dtype = x.dtype
        x32 = ops.cast(x, "float32")
        # the statistics in two passes (E[(x - mean)^2]; the one-pass E[x^2] - E[x]^2 loses
        # digits on the 8-pixel deepest maps), then one fused multiply-add to apply them:
        # x * s + (beta - mean * s) with per-channel s — fewer full-size temporaries (and
        # gradient ops) than (x - mean) / sd * gamma + beta
        mean = ops.mean(x32, axis=(1, 2), keepdims=True)
        var = ops.mean(ops.square(x32 - mean), axis=(1, 2), keepdims=True)
        scale = ops.rsqrt(var + self.epsilon)
        if self.gamma is not None:
            scale = scale * ops.cast(self.gamma, "float32")
        shift = -mean * scale
        if self.beta is not None:
            shift = shift + ops.cast(self.beta, "float32")
        return ops.cast(x32 * scale + shift, orig_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "center": self.center, "scale": self.scale}


@keras.saving.register_keras_serializable(package="mammo")
class L2Normalize(keras.layers.Layer):
    """Scale each feature vector to unit L2 norm (the feature generator g_i of paper 2.2),
    so the five pooled levels enter the fused latent z on the same scale."""

    def __init__(self, axis: int = -1, epsilon: float = 1e-12, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)
        self.epsilon = float(epsilon)

    def call(self, x):
        orig_dtype = x.dtype
        x32 = ops.cast(x, "float32")
        sq = ops.sum(ops.square(x32), axis=self.axis, keepdims=True)
        return ops.cast(x32 * ops.rsqrt(ops.maximum(sq, self.epsilon)), orig_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}


def _phase_matrices():
    """For nearest 2x upsampling followed by a 3x3 'same' convolution, output row 2i+a reads
    upsampled rows 2i+a-1 .. 2i+a+1, i.e. input rows i-1 .. i+1 with the kernel's rows summed
    as ``A[a] @ w``: a=0 -> (w0, w1+w2, 0), a=1 -> (0, w0+w1, w2)."""
    import numpy as np
    return np.array([[[1, 0, 0], [0, 1, 1], [0, 0, 0]],
                     [[0, 0, 0], [1, 1, 0], [0, 0, 1]]], dtype="float32")


@keras.saving.register_keras_serializable(package="mammo")
class UpsampleConv2D(keras.layers.Layer):
    """``Conv2D(filters, 3, padding='same')(UpSampling2D(2)(x))`` computed exactly, 4x cheaper.

    The same 3x3 kernel (same weights, same shapes as a Conv2D) is folded into four 3x3
    "phase" kernels applied at the input resolution, whose outputs are interleaved with
    ``depth_to_space`` (sub-pixel convolution). Zero padding agrees at every border, so the
    result equals upsample-then-convolve to float rounding (tested). On CPU the
    full-resolution convolution with one output channel and its gradient cost as much as
    the whole encoder (bench/README_model.md); at the input resolution they are cheap.
    """

    def __init__(self, filters: int, activation=None, kernel_initializer="glorot_uniform", use_bias: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        channels = input_shape[-1]
        # initialised as the equivalent Conv2D on the upsampled map would be (fan_in = 9 * C)
        self.kernel = self.add_weight(shape=(3, 3, channels, self.filters), initializer=self.kernel_initializer,
                                      name="kernel")
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias") if self.use_bias else None

    def call(self, x):
        k = ops.cast(self.kernel, x.dtype)
        a = ops.cast(ops.convert_to_tensor(_phase_matrices()), x.dtype)  # (2, 3 offsets, 3 taps)
        # phase kernel K[a, b] = A[a] @ w @ A[b]^T over (rows, cols): shape (3, 3, C, 2, 2, F)
        phases = ops.einsum("apr,bqs,rscf->pqcabf", a, a, k)
        c = k.shape[2]
        phases = ops.reshape(phases, (3, 3, c, 4 * self.filters))
        y = ops.conv(x, phases, strides=1, padding="same")
        if self.bias is not None:
            y = y + ops.tile(ops.cast(self.bias, y.dtype), [4])
        y = ops.depth_to_space(y, 2)
        return self.activation(y) if self.activation is not None else y

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        return (b, None if h is None else 2 * h, None if w is None else 2 * w, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "activation": keras.activations.serialize(self.activation) if self.activation else None,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "use_bias": self.use_bias}
