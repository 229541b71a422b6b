"""The rows of the paper's tables (:class:`RunSpec`) and which rows each table needs (:data:`EXPERIMENTS`).

The ``bench_*`` and ``all_data`` experiments are the CPU benchmark protocol of
``bench/README_experiments.md`` (``mammo-mtl experiments --budget bench``): fewer rows than the
paper's tables, each trained at several seeds and compared with tests across seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from curation.tasks import ALL_MODEL_TASKS
from label_mining.training_policies import LabelPlan


Role = Literal["mtl", "single_task", "ensemble", "mc_dropout", "finetune", "pseudo_label"]


class RunSpec(BaseModel):
    """One row of a paper table: what is trained and how it predicts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    role: Role = "mtl"
    tasks: tuple[str, ...] = ALL_MODEL_TASKS
    architecture: Literal["mtl", "single_task"] = "mtl"
    labels: LabelPlan = LabelPlan()
    train_on: tuple[str, str] = ("hmi", "train")
    init_from: str | None = Field(None, description="name of the spec whose model this one starts from")
    class_weights: dict[str, tuple[float, ...]] = Field(default_factory=dict)
    pseudo_label_keep: float = Field(0.5, gt=0.0, lt=1.0, description="MixMatch: labels kept for the first stage")

    @field_validator("tasks", mode="before")
    @classmethod
    def _tasks(cls, v):
        v = tuple([t.strip() for t in v.split(",") if t.strip()] if isinstance(v, str) else v)
        bad = [t for t in v if t not in ALL_MODEL_TASKS]
        if bad or not v:
            raise ValueError(f"tasks={list(v)}: choose from {list(ALL_MODEL_TASKS)}")
        return tuple(t for t in ALL_MODEL_TASKS if t in v)

    @model_validator(mode="after")
    def _consistent(self):
        if self.role in ("single_task", "ensemble", "mc_dropout", "pseudo_label") and self.architecture != "single_task":
            raise ValueError(f"{self.name}: role={self.role} is a single-task baseline; set architecture='single_task'")
        if self.role == "finetune" and not self.init_from:
            raise ValueError(f"{self.name}: a fine-tuning run needs init_from (the model it starts from)")
        return self


REFERENCE = "Ours (MTL)"
_BASELINE_KW = dict(tasks=("breastbin",), architecture="single_task")
FINETUNE_CLASS_WEIGHTS: dict[str, tuple[float, ...]] = {
    # paper 3.3.5: weight 20 for every sample with ACR 4-5 (under-represented in VTB); as class
    # weights these reach the samples through their ACR class and their (ACR-derived) malignant class
    "breastbin": (1.0, 20.0),
    "acr": (1.0, 1.0, 1.0, 20.0, 20.0, 1.0),
}


def finetune_spec(u_const: float, aux_u_const: float = 0.5, init_from: str = REFERENCE,
                  name: str | None = None) -> RunSpec:
    return RunSpec(name=name or f"FT u{u_const:.2f}", role="finetune", train_on=("vtb", "finetune"),
                   init_from=init_from, class_weights=FINETUNE_CLASS_WEIGHTS,
                   labels=LabelPlan(acr_derived_u=u_const, aux_u_const=aux_u_const))


def _reference() -> RunSpec:
    return RunSpec(name=REFERENCE)

@dataclass(frozen=True)
class TableSpec:
    number: str                 # "2_3", "4", ...
    tables: tuple[str, ...]     # the paper's table numbers it fills, one per dataset
    title: str
    layout: Literal["strata", "ablation", "auc_pair", "tasks", "seeds"]
    runs: tuple[RunSpec, ...]
    datasets: tuple[str, ...] = ("hmi_test", "inb")
    reference: str | None = None  # the row every other row is tested against (default: see reference_name)


def _ablation(name: str, tasks: tuple[str, ...]) -> RunSpec:
    return RunSpec(name=name, tasks=tasks)


EXPERIMENTS: dict[str, TableSpec] = {
    "2_3": TableSpec("2_3", ("2", "3"), "Binary cancer classification AUC (p-value to ours), overall and per stratum",
                     "strata", (
                         RunSpec(name="Baseline", role="single_task", **_BASELINE_KW),
                         RunSpec(name="Ensembles", role="ensemble", **_BASELINE_KW),
                         RunSpec(name="MC-drop", role="mc_dropout", **_BASELINE_KW),
                         _reference())),
    "4": TableSpec("4", ("4",), "Contribution of each auxiliary task to the binary cancer AUC", "ablation", (
        _reference(),
        _ablation("breastbin", ("breastbin",)),
        _ablation("breastbin + rec", ("breastbin", "rec")),
        _ablation("breastbin + ACR", ("breastbin", "acr")),
        _ablation("breastbin + density", ("breastbin", "density")),
        _ablation("breastbin + view", ("breastbin", "view")))),
    "5": TableSpec("5", ("5",), "Binary cancer AUC with fewer or noisier breastbin labels", "auc_pair", (
        RunSpec(name="Reference"),
        *(RunSpec(name=f"MTL breast-{p}%", labels=LabelPlan(keep_fraction=1 - p / 100)) for p in (25, 50, 75)),
        *(RunSpec(name=f"MTL all-{p}%", labels=LabelPlan(sample_fraction=1 - p / 100)) for p in (25, 50, 75)),
        RunSpec(name="MixMatch", role="pseudo_label", **_BASELINE_KW),
        RunSpec(name="NL50%", role="single_task", labels=LabelPlan(noise_exclude_fraction=0.5, noise_fraction=0.5),
                **_BASELINE_KW),
        RunSpec(name="NL100%", role="single_task", labels=LabelPlan(noise_exclude_fraction=0.5, noise_fraction=1.0),
                **_BASELINE_KW))),
    "6_7": TableSpec("6_7", ("6", "7"), "Multi-task vs mono-task training (mono-task keeps the feature fusion)",
                     "tasks", (
                         RunSpec(name="MTL"),
                         RunSpec(name="breastbin", tasks=("breastbin",)),
                         RunSpec(name="ACR", tasks=("acr",)),
                         RunSpec(name="density", tasks=("density",)),
                         RunSpec(name="view", tasks=("view",)))),
    "8_9": TableSpec("8_9", ("8", "9"), "Fine-tuning on vtb with ACR-derived breastbin labels of uncertainty u_const",
                     "tasks", (
                         RunSpec(name="Reference (MTL)"),
                         *(finetune_spec(u, init_from="Reference (MTL)") for u in (0.0, 0.25, 0.5, 0.75, 0.9)))),
}

# --- the CPU benchmark protocol (issue 11 items 3 and 4) ----------------------------------------
BENCH_REFERENCE = "MTL"
_K25 = dict(confirmed_only=True, keep_fraction=0.25)
BENCH_EXPERIMENTS: dict[str, TableSpec] = {
    "bench_2": TableSpec("bench_2", ("B2",), "Table 2 arms: MTL vs single-task baselines", "seeds", (
        RunSpec(name=BENCH_REFERENCE),
        RunSpec(name="Baseline", role="single_task", **_BASELINE_KW),
        RunSpec(name="Ensemble", role="ensemble", **_BASELINE_KW),
        RunSpec(name="MC-drop", role="mc_dropout", **_BASELINE_KW)), reference=BENCH_REFERENCE),
    "bench_4": TableSpec("bench_4", ("B4",), "Table 4 arms: breastbin with one auxiliary task", "seeds", (
        RunSpec(name=BENCH_REFERENCE),
        _ablation("breastbin", ("breastbin",)),
        _ablation("breastbin + rec", ("breastbin", "rec")),
        _ablation("breastbin + ACR", ("breastbin", "acr")),
        _ablation("breastbin + density", ("breastbin", "density")),
        _ablation("breastbin + view", ("breastbin", "view"))), reference=BENCH_REFERENCE),
    "bench_5": TableSpec("bench_5", ("B5",), "Table 5 arms: breastbin kept for a fraction of training breasts",
                         "seeds", (
        RunSpec(name=BENCH_REFERENCE),
        *(RunSpec(name=f"breastbin kept {k}%", labels=LabelPlan(keep_fraction=k / 100)) for k in (75, 50, 25))),
        reference=BENCH_REFERENCE),
    "bench_8_9": TableSpec("bench_8_9", ("B8",), "Tables 8/9 arms: fine-tuning on vtb, u_const 0 vs 0.9", "seeds", (
        RunSpec(name=BENCH_REFERENCE),
        finetune_spec(0.0, init_from=BENCH_REFERENCE), finetune_spec(0.9, init_from=BENCH_REFERENCE)),
        reference="FT u0.00"),
    "all_data": TableSpec("all_data", ("A",), "Use all your data: 25 % of breasts with a confirmed malignancy label",
                          "seeds", (
        RunSpec(name="MTL, uncertainty weights", labels=LabelPlan(**_K25)),
        RunSpec(name="single-task, the 25 %", role="single_task", labels=LabelPlan(**_K25), **_BASELINE_KW),
        RunSpec(name="single-task, ACR-derived u=0", role="single_task",
                labels=LabelPlan(**_K25, acr_derived_u=0.0), **_BASELINE_KW),
        RunSpec(name="MTL, ACR-derived u=0.5", labels=LabelPlan(**_K25, acr_derived_u=0.5))),
        reference="MTL, uncertainty weights"),
}
BENCH_PROTOCOL = tuple(BENCH_EXPERIMENTS)
EXPERIMENTS.update(BENCH_EXPERIMENTS)
PAPER_TABLES = ("2_3", "4", "5", "6_7", "8_9")
TABLE_ALIASES = {n: key for key, spec in EXPERIMENTS.items() for n in (*spec.tables, key)}


def reference_name(spec: TableSpec) -> str:
    if spec.reference:
        return spec.reference
    names = [r.name for r in spec.runs]
    for cand in (REFERENCE, "Reference (MTL)", "Reference", "MTL"):
        if cand in names:
            return cand
    return names[0]


def resolve_tables(names: Iterable[str]) -> list[str]:
    """``["2", "6_7", "9"]`` -> experiment keys ``["2_3", "6_7", "8_9"]`` (deduplicated, in order)."""
    out: list[str] = []
    for n in names:
        key = TABLE_ALIASES.get(str(n).strip())
        if key is None:
            raise ValueError(f"table {n!r} is not one of the paper's experiments; choose from "
                             f"{sorted(set(TABLE_ALIASES))}")
        if key not in out:
            out.append(key)
    return out

