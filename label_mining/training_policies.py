"""Training-time label policies: how one training run changes the manifest's labels.

Next to :mod:`label_mining.handling` on purpose: both answer "what does the model learn from an
uncertain or missing label", one when labels are mined, this one when a run is launched, and they
share their meanings:

* ACR → malignancy is :data:`label_mining.malignancy.ACR_TO_MALIGNANCY` restricted to the derived
  categories :data:`~label_mining.malignancy.DERIVED_ACR` (1–2 → 0, 4–5 → 1, 3 → missing); ACR 6 is
  a stated, not a derived, malignancy and is never re-derived here.
* ``ignore`` is :func:`label_mining.handling.is_ignored`: a label with u > ``uncertain_above`` is
  dropped (missing, weight 0). ``certain`` keeps every present label at weight 1 (u treated as 0;
  CheXpert's "treat the uncertain label as stated"); ``weight`` is the paper's w = 1 − u.

:class:`LabelPlan` is applied breast-wise and seeded by :func:`apply_label_plan`; the manifest
itself is never modified. No TensorFlow, no Dagster.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from curation.tasks import LABEL_TASKS
from label_mining.handling import is_ignored
from label_mining.malignancy import ACR_TO_MALIGNANCY, DERIVED_ACR

UncertaintyPolicy = Literal["weight", "ignore", "certain", "exclude"]
EXPERIMENT_SOURCE = "experiment"
# label_mining's source for ACR-derived malignancy, and the one this module writes
DERIVED_SOURCES = ("derived", "acr_derived")
DERIVED_MALIGNANCY: dict[int, int] = {a: ACR_TO_MALIGNANCY[a] for a in sorted(DERIVED_ACR)}


class LabelPlan(BaseModel):
    """The label transformations of one training run, applied in the order of the fields.

    Breast-wise throughout: the views of a breast share its labels, so removing or corrupting the
    label of one view and not the other would leak it back through the second view.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    uncertainty_policy: UncertaintyPolicy = Field(
        "weight", description="weight: w = 1 - u (paper eq. 2); ignore: a label with u > uncertain_above is "
                              "missing (label_mining.handling's meaning); certain: every present label weight 1; "
                              "exclude: the former name of ignore")
    uncertain_above: float = Field(0.0, ge=0.0, lt=1.0, description="ignore: labels with u above this are dropped")
    confirmed_only: bool = Field(False, description="drop breastbin labels label_mining derived from the ACR "
                                                    "category (keep pathology, follow-up, review, ACR 6)")
    keep_fraction: float = Field(1.0, gt=0.0, le=1.0, description="fraction of breasts keeping labels of keep_tasks")
    keep_tasks: tuple[str, ...] = ("breastbin",)
    sample_fraction: float = Field(1.0, gt=0.0, le=1.0, description="fraction of breasts kept at all (MTL_all-x%)")
    noise_exclude_fraction: float = Field(0.0, ge=0.0, lt=1.0, description="NL: breastbin labels excluded")
    noise_fraction: float = Field(0.0, ge=0.0, le=1.0, description="NL: of the excluded, put back with a random label")
    acr_derived_u: float | None = Field(None, ge=0.0, lt=1.0, description="u_const of ACR-derived breastbin labels")
    aux_u_const: float | None = Field(None, ge=0.0, lt=1.0, description="u of acr/density/view labels (fine-tuning)")
    seed: int = Field(0, ge=0)

    @field_validator("keep_tasks", mode="before")
    @classmethod
    def _tasks(cls, v):
        v = tuple([t.strip() for t in v.split(",") if t.strip()] if isinstance(v, str) else v)
        bad = [t for t in v if t not in LABEL_TASKS]
        if bad or not v:
            raise ValueError(f"keep_tasks={list(v)}: choose one or more of {list(LABEL_TASKS)}")
        return v

    @model_validator(mode="after")
    def _noise(self):
        if self.noise_fraction > 0 and self.noise_exclude_fraction == 0:
            raise ValueError("noise_fraction > 0 needs noise_exclude_fraction > 0 (noise replaces excluded labels)")
        return self


def _breasts(rows: pd.DataFrame) -> np.ndarray:
    return np.array(sorted(rows["breast_key"].astype(str).unique()))


def _pick(breasts: Sequence[str], fraction: float, rng: np.random.Generator) -> set[str]:
    breasts = np.asarray(sorted(breasts))
    n = int(round(fraction * len(breasts)))
    return set(rng.permutation(breasts)[:n].tolist()) if n else set()


def remove_labels(rows: pd.DataFrame, mask: np.ndarray, task: str, source: str = EXPERIMENT_SOURCE) -> None:
    """Make ``task`` missing where ``mask`` (label None, u 1, weight 0), in place."""
    rows.loc[mask, task] = None
    rows.loc[mask, f"{task}_weight"] = 0.0
    rows.loc[mask, f"{task}_u"] = 1.0
    rows.loc[mask, f"{task}_source"] = source


def as_object(rows: pd.DataFrame) -> pd.DataFrame:
    """Label columns as objects so None/float/str can be written back without dtype surprises."""
    rows = rows.copy()
    for t in LABEL_TASKS:
        if t in rows.columns:
            rows[t] = rows[t].astype(object).where(rows[t].notna(), None)
    return rows


def apply_uncertainty_policy(rows: pd.DataFrame, policy: UncertaintyPolicy,
                             uncertain_above: float = 0.0) -> pd.DataFrame:
    rows = as_object(rows)
    for t in LABEL_TASKS:
        if t not in rows.columns:
            continue
        present = rows[t].notna().to_numpy()
        u = pd.to_numeric(rows[f"{t}_u"], errors="coerce").fillna(0.0).to_numpy(dtype=float) \
            if f"{t}_u" in rows.columns else np.zeros(len(rows))
        if policy == "weight":
            w = np.where(present, 1.0 - u, 0.0)
        elif policy == "certain":
            w = np.where(present, 1.0, 0.0)
        elif policy in ("ignore", "exclude"):
            dropped = is_ignored(present, u, uncertain_above)
            w = np.where(present & ~dropped, 1.0 - u, 0.0)
            remove_labels(rows, dropped, t, source="uncertain_ignored")
        else:
            raise ValueError(f"uncertainty_policy={policy!r}: choose weight, ignore or certain")
        rows[f"{t}_weight"] = np.clip(w, 0.0, 1.0)
    return rows


def derive_malignancy_from_acr(rows: pd.DataFrame, u_const: float) -> pd.DataFrame:
    """Paper 3.3.5: a breastbin label from the ACR category wherever no better one exists.

    :data:`DERIVED_MALIGNANCY`: ACR 1–2 → 0, ACR 4–5 → 1, anything else (0, 3, 6, missing) → missing.
    Labels from a better source (pathology, follow-up, review, an ACR 6 report) are kept as they are:
    a biopsy outranks a category. Labels label_mining itself derived from ACR are re-derived with
    ``u_const``.
    """
    rows = as_object(rows)
    acr = pd.to_numeric(rows["acr"], errors="coerce")
    derived = acr.map(DERIVED_MALIGNANCY)
    source = rows["breastbin_source"].astype(object).where(rows["breastbin_source"].notna(), None)
    better = rows["breastbin"].notna() & ~source.isin(DERIVED_SOURCES)
    has = ~better & derived.notna()
    gone = ~better & derived.isna()
    rows.loc[has, "breastbin"] = derived[has].astype(int).astype(object)
    rows.loc[has, "breastbin_u"] = u_const
    rows.loc[has, "breastbin_weight"] = 1.0 - u_const
    rows.loc[has, "breastbin_source"] = "acr_derived"
    remove_labels(rows, gone.to_numpy(), "breastbin")
    return rows


def apply_label_plan(rows: pd.DataFrame, plan: LabelPlan) -> pd.DataFrame:
    """The rows a run trains on — a new frame; the manifest itself is never modified."""
    rows = apply_uncertainty_policy(rows.reset_index(drop=True), plan.uncertainty_policy, plan.uncertain_above)
    rng = np.random.default_rng(plan.seed)
    if plan.confirmed_only and "breastbin_source" in rows.columns:
        derived = rows["breastbin"].notna() & rows["breastbin_source"].isin(DERIVED_SOURCES)
        remove_labels(rows, derived.to_numpy(), "breastbin")
    if plan.sample_fraction < 1.0:
        kept = _pick(_breasts(rows), plan.sample_fraction, rng)
        rows = rows[rows["breast_key"].isin(kept)].reset_index(drop=True)
    if plan.keep_fraction < 1.0:
        labelled = rows[rows[list(plan.keep_tasks)].notna().any(axis=1)]
        dropped = _pick(_breasts(labelled), 1.0 - plan.keep_fraction, rng)
        mask = rows["breast_key"].isin(dropped).to_numpy()
        for t in plan.keep_tasks:
            remove_labels(rows, mask, t)
    if plan.noise_exclude_fraction > 0:
        excluded = _pick(_breasts(rows[rows["breastbin"].notna()]), plan.noise_exclude_fraction, rng)
        noisy = _pick(sorted(excluded), plan.noise_fraction, rng)
        remove_labels(rows, rows["breast_key"].isin(excluded).to_numpy(), "breastbin")
        random_label = {b: int(rng.integers(0, 2)) for b in sorted(noisy)}
        mask = rows["breast_key"].isin(noisy).to_numpy()
        rows.loc[mask, "breastbin"] = rows.loc[mask, "breast_key"].map(random_label).astype(object)
        rows.loc[mask, "breastbin_weight"] = 1.0
        rows.loc[mask, "breastbin_u"] = 0.0
        rows.loc[mask, "breastbin_source"] = "experiment_noise"
    if plan.acr_derived_u is not None:
        rows = derive_malignancy_from_acr(rows, plan.acr_derived_u)
    if plan.aux_u_const is not None:
        for t in ("acr", "density", "view"):
            present = rows[t].notna()
            rows.loc[present, f"{t}_u"] = plan.aux_u_const
            rows.loc[present, f"{t}_weight"] = 1.0 - plan.aux_u_const
    return rows


def label_counts(rows: pd.DataFrame) -> dict[str, int]:
    """Labels with a non-zero weight per task — what a run actually learns from."""
    out = {}
    for t in LABEL_TASKS:
        if t in rows.columns:
            w = pd.to_numeric(rows[f"{t}_weight"], errors="coerce").fillna(0.0) if f"{t}_weight" in rows else 1.0
            out[t] = int((rows[t].notna() & (w > 0)).sum())
    return out
