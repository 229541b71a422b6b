"""Typed run configuration for the network and its trainer.

Every field is validated when the config is built, so a bad value (a task that does not
exist, a height that is not a multiple of 64, a class-weight vector of the wrong length)
fails before any image is decoded, with an error that names the field.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from curation.tasks import ALL_MODEL_TASKS, LABEL_TASKS, n_classes

# Encoder downsampling: a stride-2 stem and five stride-2 levels -> the input must be
# divisible by 2**6, otherwise the decoder cannot rebuild an image of the same size.
SIZE_MULTIPLE = 64
ENCODER_FILTERS = (16, 32, 64, 128, 256)  # paper 2.2; their sum is the 496-d latent z


def _check_tasks(v):
    if isinstance(v, str):
        v = [t.strip() for t in v.split(",") if t.strip()]
    v = tuple(v)
    unknown = [t for t in v if t not in ALL_MODEL_TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; choose from {list(ALL_MODEL_TASKS)}")
    if len(set(v)) != len(v):
        raise ValueError(f"tasks {list(v)} contain duplicates")
    if not v:
        raise ValueError("at least one task must be enabled")
    # canonical order so the same set of tasks always builds the same graph
    return tuple(t for t in ALL_MODEL_TASKS if t in v)


def _check_size(v: int, name: str) -> int:
    if v % SIZE_MULTIPLE:
        raise ValueError(f"{name}={v} must be a multiple of {SIZE_MULTIPLE} "
                         f"(the stem and the 5 encoder levels each halve the image)")
    return v


class _NetworkShape(BaseModel):
    """Fields and checks shared by the network's description and a training run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tasks: tuple[str, ...] = ALL_MODEL_TASKS
    height: int = Field(256, gt=0)
    width: int = Field(192, gt=0)
    architecture: Literal["mtl", "single_task"] = "mtl"
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    # How each level's L2-normalised feature g_i is scaled before fusion (see network.feature_fusion):
    # "unit_rms" (default) multiplies by sqrt(d_i); "unit_norm" is the paper's plain L2 normalisation.
    latent_scale: Literal["unit_rms", "unit_norm"] = "unit_rms"

    @field_validator("tasks", mode="before")
    @classmethod
    def _tasks(cls, v):
        return _check_tasks(v)

    @field_validator("height", "width")
    @classmethod
    def _multiple_of_64(cls, v, info):
        return v if v == "auto" else _check_size(v, info.field_name)


class ModelConfig(_NetworkShape):
    """What the network looks like (everything needed to rebuild it)."""

    encoder_filters: tuple[int, ...] = ENCODER_FILTERS
    # "Narrower" decoder (paper 2.2): each level has this fraction of the encoder's filters.
    decoder_width: float = Field(0.5, gt=0.0, le=1.0)
    leaky_alpha: float = Field(0.1, ge=0.0, lt=1.0)

    @field_validator("encoder_filters")
    @classmethod
    def _filters(cls, v):
        if len(v) != 5 or any(f <= 0 for f in v):
            raise ValueError(f"encoder_filters={v} must be 5 positive integers (5 ResNet22 levels)")
        return tuple(v)

    @model_validator(mode="after")
    def _single_task(self):
        if self.architecture == "single_task":
            label_tasks = [t for t in self.tasks if t in LABEL_TASKS]
            if len(label_tasks) != 1 or "rec" in self.tasks:
                raise ValueError(f"tasks={list(self.tasks)}: architecture='single_task' needs exactly one "
                                 f"classification task and no 'rec'")
            # its only feature is the deepest map; at 1x1 instance norm makes it constant
            if (self.height // SIZE_MULTIPLE) * (self.width // SIZE_MULTIPLE) < 2:
                raise ValueError(f"height={self.height}, width={self.width}: the single-task baseline needs "
                                 f"height or width >= 128 (its deepest 1x1 map would be constant)")
        return self

    @property
    def label_tasks(self) -> tuple[str, ...]:
        return tuple(t for t in self.tasks if t in LABEL_TASKS)

    @property
    def latent_dim(self) -> int:
        return sum(self.encoder_filters)


class AugmentConfig(BaseModel):
    """Train-time augmentation (paper 2.4 / DESIGN): translation, zoom and vertical flip,
    each applied with probability p. No horizontal flip (the breast always faces left in
    the cache) and no shear (it would distort tissue geometry)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    p: float = Field(0.5, ge=0.0, le=1.0)
    max_translate: float = Field(0.1, ge=0.0, lt=0.5, description="fraction of H and W")
    max_zoom: float = Field(0.1, ge=0.0, lt=0.5, description="zoom factor in [1-z, 1+z]")


class TrainConfig(_NetworkShape):
    """Everything a training run depends on. ``config_hash`` identifies a run."""

    # "auto": the smallest multiple of 64 that holds the tissue of every training image
    # (model.data.fit_width); a fixed width that cuts tissue trains with a warning and the
    # count of cut images in result.json
    width: int | Literal["auto"] = 192
    decoder_width: float = Field(0.5, gt=0.0, le=1.0)
    epochs: int = Field(10, gt=0)
    batch_size: int = Field(8, gt=0)
    learning_rate: float = Field(1e-3, gt=0.0)
    seed: int = Field(0, ge=0)
    # per task, one factor per class in curation.tasks order, multiplied into the sample
    # weight (fine-tuning in the paper uses x20 for ACR 4-5)
    class_weights: dict[str, tuple[float, ...]] = Field(default_factory=dict)
    # lambda_t in front of each task loss; paper: all 1
    task_factors: dict[str, float] = Field(default_factory=dict)
    mixed_precision: bool = False
    # "multi_worker_mirrored" (the name the README used) is an alias of "multi_worker"
    strategy: Literal["default", "mirrored", "multi_worker", "multi_worker_mirrored"] = "default"
    augment: AugmentConfig = AugmentConfig()
    selection_metric: str | None = None  # None -> val_breastbin_auc if breastbin else val_loss
    selection_mode: Literal["auto", "max", "min"] = "auto"
    shuffle_buffer: int = Field(1024, gt=0)
    input_threads: int | None = Field(None, gt=0, description="tf.data decode threads; None = half the cores")
    # XLA: on this CPU it makes the first step ~1.6x slower to compile for no gain; try
    # True (or "auto") on GPUs for long runs
    jit_compile: bool | Literal["auto"] = False
    # eager steps skip graph tracing (~20 s of CPU per model): only worth it for tiny runs
    # such as tests and debugging; far slower per step on real data
    run_eagerly: bool = False
    deterministic_ops: bool = False  # tf.config.experimental.enable_op_determinism (slower)
    verbose: int = Field(1, ge=0, le=2)

    @field_validator("class_weights")
    @classmethod
    def _class_weights(cls, v):
        for task, weights in v.items():
            if task not in LABEL_TASKS:
                raise ValueError(f"class_weights: {task!r} is not a classification task {list(LABEL_TASKS)}")
            if len(weights) != n_classes(task):
                raise ValueError(f"class_weights[{task!r}] has {len(weights)} values; "
                                 f"{task} has {n_classes(task)} classes")
            if any(w < 0 for w in weights):
                raise ValueError(f"class_weights[{task!r}] must be >= 0")
        return v

    @field_validator("task_factors")
    @classmethod
    def _task_factors(cls, v):
        for task, f in v.items():
            if task not in ALL_MODEL_TASKS:
                raise ValueError(f"task_factors: {task!r} is not a task {list(ALL_MODEL_TASKS)}")
            if f < 0:
                raise ValueError(f"task_factors[{task!r}]={f} must be >= 0")
        return v

    @model_validator(mode="after")
    def _consistent(self):
        if self.width != "auto":
            self.model_cfg()  # single_task constraints
        for name in ("class_weights", "task_factors"):
            extra = [t for t in getattr(self, name) if t not in self.tasks]
            if extra:
                raise ValueError(f"{name} names task(s) {extra} that are not enabled in tasks={list(self.tasks)}")
        if self.selection_metric is not None and not self.selection_metric.startswith(("val_", "loss")):
            raise ValueError(f"selection_metric={self.selection_metric!r} must be 'loss' or a 'val_*' metric")
        return self

    # ------------------------------------------------------------------------------
    def with_width(self, width: int) -> "TrainConfig":
        """This config with a concrete width (how ``width="auto"`` is resolved)."""
        return TrainConfig.model_validate({**self.model_dump(), "width": width})

    def model_cfg(self) -> ModelConfig:
        if self.width == "auto":
            raise ValueError("width='auto' is resolved from the training images; call with_width() first")
        return ModelConfig(tasks=self.tasks, height=self.height, width=self.width, dropout=self.dropout,
                           architecture=self.architecture, decoder_width=self.decoder_width,
                           latent_scale=self.latent_scale)

    @property
    def label_tasks(self) -> tuple[str, ...]:
        return tuple(t for t in self.tasks if t in LABEL_TASKS)

    def resolved_selection(self, has_val: bool) -> tuple[str, str]:
        """(metric, 'max'|'min') used to pick the best epoch."""
        if not has_val:
            metric = "loss"
        elif self.selection_metric is not None:
            metric = self.selection_metric
        elif "breastbin" in self.tasks:
            metric = "val_breastbin_auc"
        else:
            metric = "val_loss"
        if metric.startswith("val_") and not has_val:
            raise ValueError(f"selection_metric={metric!r} needs validation rows")
        mode = self.selection_mode
        if mode == "auto":
            mode = "max" if metric.endswith(("auc", "bacc", "acc")) else "min"
        return metric, mode

    def config_hash(self) -> str:
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]
