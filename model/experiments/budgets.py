"""How much compute an experiment gets: the named budgets of ``mammo-mtl experiments --budget``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DATASETS: dict[str, tuple[str, str]] = {"hmi_test": ("hmi", "test"), "inb": ("inb", "test")}


class Budget(BaseModel):
    """How much compute an experiment gets. ``small`` fits the 2-core demo machine; ``paper``
    follows the paper's protocol (100 epochs, 5-model ensembles, 10 MC passes, 20 fine-tuning
    epochs) at a height a single GPU trains in hours rather than days."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    height: int = Field(gt=0)
    width: int = Field(gt=0)
    epochs: int = Field(gt=0)
    finetune_epochs: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    learning_rate: float = Field(1e-3, gt=0)
    seeds: int = Field(1, ge=1, description="independent trainings per row; cells are mean ± sd over seeds")
    ensemble_size: int = Field(2, ge=1, description="models in an ensemble; 1 means no ensemble")
    mc_passes: int = Field(10, ge=2)
    n_bootstrap: int = Field(1000, ge=0)
    finetune_learning_rate: float = Field(1e-4, gt=0)
    mixed_precision: Literal["off", "on", "auto"] = Field(
        "off", description="mixed_float16 training; auto: on when TensorFlow sees a GPU")
    jit_compile: Literal["off", "on", "auto"] = Field("off", description="XLA; passed to TrainConfig.jit_compile")



BUDGETS: dict[str, Budget] = {
    # the assets' defaults (make demo): Table 2/3 built from the demo's own models, nothing retrained.
    # MTL and single-task baseline get the same 24 epochs (a fair comparison; at 8 epochs only view is
    # learned); one baseline instead of an ensemble keeps `make demo` under 10 minutes on 2 cores
    "demo": Budget(name="demo", height=256, width=128, epochs=24, finetune_epochs=2, batch_size=16,
                   seeds=1, ensemble_size=1, mc_passes=10, n_bootstrap=1000),
    "small": Budget(name="small", height=128, width=64, epochs=4, finetune_epochs=2, batch_size=16,
                    seeds=1, ensemble_size=2, mc_passes=10, n_bootstrap=500),
    # the CPU benchmark protocol (bench/README_experiments.md): 3 seeds per arm, mean ± sd, per-seed
    # DeLong and paired tests across seeds; 256x128 and 15 epochs (see the README for what learns there)
    "bench": Budget(name="bench", height=256, width=128, epochs=15, finetune_epochs=3, batch_size=16,
                    seeds=3, ensemble_size=5, mc_passes=10, n_bootstrap=0),
    "paper": Budget(name="paper", height=512, width=256, epochs=100, finetune_epochs=20, batch_size=16,
                    seeds=3, ensemble_size=5, mc_passes=10, n_bootstrap=2000, mixed_precision="auto",
                    jit_compile="auto"),
}


def budget(name: str) -> Budget:
    try:
        return BUDGETS[name]
    except KeyError:
        raise ValueError(f"budget={name!r}: choose one of {sorted(BUDGETS)}") from None
