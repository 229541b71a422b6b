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
        mean = ops.mean(x32, axis=(1, 2), keepdims=True)
        var = ops.var(x32, axis=(1, 2), keepdims=True)
        y = (x32 - mean) * ops.rsqrt(var + self.epsilon)
        if self.gamma is not None:
            y = y * ops.cast(self.gamma, "float32")
        if self.beta is not None:
            y = y + ops.cast(self.beta, "float32")
        return ops.cast(y, orig_dtype)

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
