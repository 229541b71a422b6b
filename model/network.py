"""The multi-task hourglass network of the paper (section 2.2, Figure 1).

Encoder E: ResNet22 — a stride-2 stem, then 5 levels (16/32/64/128/256 filters) of two
residual blocks, each block two depthwise-separable convolutions with instance
normalisation and LeakyReLU. After every level a feature generator g_i = GAP -> L2
normalisation -> dropout; the five vectors are concatenated into the latent ``z``
(16+32+64+128+256 = 496-d). One dense softmax head per classification task reads z.

Decoder D: a narrower, upside-down ResNet22 (one residual block per level, no
encoder-decoder skips, paper 2.2) that rebuilds the image from the deepest encoder map —
the hourglass bottleneck. z itself is spatially pooled and cannot carry the layout a
reconstruction needs; decoding the bottleneck still forces every encoder weight to
serve reconstruction, which is the regularisation the paper wants from it.

Size: H and W must be multiples of 64 (a stride-2 stem and five stride-2 levels). At 64 px
the deepest map is 1x1, which instance normalisation turns into a constant — fine for
shape tests, useless for learning; train at >= 128 px (the single-task baseline, whose
only feature is that map, refuses smaller inputs).

Layer names are a contract: the latent layer is ``z``, heads are named by task
(``breastbin``, ``acr``, ``density``, ``view``), the reconstruction output is ``rec``.
"""

from __future__ import annotations

import keras
from keras import layers

from curation.tasks import n_classes
from model.config import ModelConfig
from model.layers import InstanceNormalization, L2Normalize, UpsampleConv2D

INIT = "glorot_uniform"  # Xavier (paper 2.4)


def _sep_conv(x, filters: int, stride: int, name: str):
    return layers.SeparableConv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                                  depthwise_initializer=INIT, pointwise_initializer=INIT, name=name)(x)


def residual_block(x, filters: int, stride: int = 1, alpha: float = 0.1, name: str = "block"):
    """Two depthwise-separable 3x3 convolutions with instance norm + LeakyReLU and an
    identity (or 1x1 projection) shortcut."""
    shortcut = x
    y = _sep_conv(x, filters, stride, f"{name}_conv1")
    y = InstanceNormalization(name=f"{name}_in1")(y)
    y = layers.LeakyReLU(negative_slope=alpha, name=f"{name}_act1")(y)
    y = _sep_conv(y, filters, 1, f"{name}_conv2")
    y = InstanceNormalization(name=f"{name}_in2")(y)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, kernel_initializer=INIT,
                                 name=f"{name}_proj")(x)
        shortcut = InstanceNormalization(name=f"{name}_proj_in")(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.LeakyReLU(negative_slope=alpha, name=f"{name}_out")(y)


def encoder(image, cfg: ModelConfig):
    """Return (list of the 5 level outputs, deepest map)."""
    x = layers.Conv2D(cfg.encoder_filters[0], 3, strides=2, padding="same", use_bias=False,
                      kernel_initializer=INIT, name="stem_conv")(image)
    x = InstanceNormalization(name="stem_in")(x)
    x = layers.LeakyReLU(negative_slope=cfg.leaky_alpha, name="stem_act")(x)
    levels = []
    for i, f in enumerate(cfg.encoder_filters, start=1):
        x = residual_block(x, f, stride=2, alpha=cfg.leaky_alpha, name=f"enc{i}_b1")
        x = residual_block(x, f, stride=1, alpha=cfg.leaky_alpha, name=f"enc{i}_b2")
        levels.append(x)
    return levels, x


def feature_fusion(levels, dropout: float, latent_scale: str = "unit_rms"):
    """g_i (GAP -> L2 -> [x sqrt(d_i)] -> dropout) for every level, concatenated into z.

    Why the sqrt(d_i) rescale ("unit_rms", our default): after L2 normalisation each of a level's
    d_i components is ~1/sqrt(d_i) (0.06 at 256 filters), so Glorot-initialised heads start with
    logits near zero and small gradients. With one task that is merely slow; with all tasks on,
    the easiest one (view) captured the shared features and breastbin, ACR and density stayed at
    their priors (measured on the demo cohort, 256x128, 8 epochs: breast AUC 0.62 and density
    weighted accuracy 0.25 with plain L2; 0.74 and 0.31 with the rescale). The rescale keeps
    the paper's normalisation (every level weighs the same, direction only) and only fixes its
    scale to unit RMS per component. ``latent_scale="unit_norm"`` reproduces the paper exactly.
    """
    feats = []
    for i, lv in enumerate(levels, start=1):
        g = layers.GlobalAveragePooling2D(name=f"g{i}_gap")(lv)
        g = L2Normalize(name=f"g{i}_l2")(g)
        if latent_scale == "unit_rms":
            g = layers.Rescaling(float(lv.shape[-1]) ** 0.5, name=f"g{i}_rms")(g)
        g = layers.Dropout(dropout, name=f"g{i}_dropout")(g)
        feats.append(g)
    return layers.Concatenate(name="z")(feats)


def decoder(bottleneck, cfg: ModelConfig):
    x = bottleneck
    for i, f in enumerate(reversed(cfg.encoder_filters), start=1):
        width = max(1, int(round(f * cfg.decoder_width)))
        x = layers.UpSampling2D(2, name=f"dec{i}_up")(x)
        x = residual_block(x, width, stride=1, alpha=cfg.leaky_alpha, name=f"dec{i}_b1")
    # the stem's 2x upsampling and the 3x3 output convolution as one exact sub-pixel
    # convolution (layers.UpsampleConv2D: same kernel, 4x fewer multiply-adds, and the
    # full-resolution 1-channel convolution was the costliest op of a CPU training step).
    # sigmoid: cache intensities are in [0, 1]; float32 output so the MSE stays exact
    # under mixed precision
    return UpsampleConv2D(1, activation="sigmoid", kernel_initializer=INIT, dtype="float32", name="rec")(x)


def classification_head(z, task: str):
    return layers.Dense(n_classes(task), activation="softmax", kernel_initializer=INIT,
                        dtype="float32", name=task)(z)


def build_mtl_model(cfg: ModelConfig | None = None, **overrides) -> keras.Model:
    """Build the network for ``cfg`` (or ``ModelConfig(**overrides)``).

    Outputs are a dict keyed by the enabled tasks (``rec`` when reconstruction is on).
    """
    if cfg is None or overrides:  # re-validate: overrides must obey the same rules
        cfg = ModelConfig(**{**(cfg.model_dump() if cfg is not None else {}), **overrides})
    if cfg.architecture == "single_task":
        return build_single_task_model(cfg)
    image = keras.Input(shape=(cfg.height, cfg.width, 1), name="image")
    levels, deepest = encoder(image, cfg)
    outputs = {}
    if cfg.label_tasks:  # a reconstruction-only model has no z (nothing would train it)
        z = feature_fusion(levels, cfg.dropout, cfg.latent_scale)
        for task in cfg.label_tasks:
            outputs[task] = classification_head(z, task)
    if "rec" in cfg.tasks:
        outputs["rec"] = decoder(deepest, cfg)
    return keras.Model(image, outputs, name="mtl_resnet22")


def build_single_task_model(cfg: ModelConfig) -> keras.Model:
    """Paper 3.3.1 baseline: the same ResNet22 encoder without multi-level fusion — GAP of
    the deepest level -> dropout -> one dense softmax head."""
    (task,) = cfg.label_tasks
    image = keras.Input(shape=(cfg.height, cfg.width, 1), name="image")
    _, deepest = encoder(image, cfg)
    g = layers.GlobalAveragePooling2D(name="gap")(deepest)
    g = layers.Dropout(cfg.dropout, name="dropout")(g)
    out = classification_head(g, task)
    return keras.Model(image, {task: out}, name=f"resnet22_{task}")


def latent_model(model: keras.Model) -> keras.Model | None:
    """A view of ``model`` that returns z (None for models without a ``z`` layer)."""
    try:
        z = model.get_layer("z").output
    except ValueError:
        return None
    return keras.Model(model.inputs, z)
