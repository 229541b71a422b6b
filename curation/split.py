"""Leak-free, stratified, seed-deterministic train/val/test split.

Grouping: all images of a *patient* land in one split (default). The paper separates
images breast-wise (same breast -> same subset), which still lets a patient's left breast
train the model that is tested on her right breast; ``group_by="breast"`` reproduces the
paper when a comparison needs it.

Stratification: groups are stratified on malignancy (any malignant breast makes the group
malignant; all-missing stays "unknown") and, where a stratum is large enough, on density
too (the densest label of the group, because density masks lesions and a test set without
dense breasts would flatter the model). Strata too small to be split in the requested
ratios fall back to malignancy only.

Determinism: a group's place in its stratum is the SHA-256 of ``seed:group``, so the
result depends on the seed and the set of groups, never on row order or on the machine.
Allocation walks the strata in sorted order and gives each group to the split that is
furthest below its target share, so every stratum (and the whole cohort) matches the
ratios to within one group. Adding groups can move groups near an allocation boundary:
re-splitting a grown cohort is a new split, not an extension of the old one.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Literal

import pandas as pd

SPLITS = ("train", "val", "test", "finetune")
GroupBy = Literal["patient", "breast"]


@dataclass(frozen=True)
class SplitConfig:
    """Ratios are fractions of groups (patients or breasts); ``val`` may be 0."""

    train: float = 0.8
    val: float = 0.0
    test: float = 0.2
    seed: int = 0
    group_by: GroupBy = "patient"
    stratify_density: bool = True

    def __post_init__(self) -> None:
        for name in ("train", "val", "test"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise ValueError(f"split ratio {name}={value!r} must be a number in [0, 1]")
        if self.train <= 0.0:
            raise ValueError(f"split ratio train={self.train!r} must be > 0: a split with no training data is useless")
        if self.test <= 0.0:
            raise ValueError(f"split ratio test={self.test!r} must be > 0: the cohort needs a held-out test set")
        total = self.train + self.val + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ValueError(f"split ratios train+val+test must sum to 1, got {self.train}+{self.val}+{self.test}={total}")
        if self.group_by not in ("patient", "breast"):
            raise ValueError(f"group_by={self.group_by!r} must be 'patient' or 'breast'")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed={self.seed!r} must be an integer")

    @property
    def ratios(self) -> dict[str, float]:
        return {name: r for name, r in (("train", self.train), ("val", self.val), ("test", self.test)) if r > 0}

    @property
    def group_column(self) -> str:
        return "patient_pid" if self.group_by == "patient" else "breast_key"

    @property
    def min_stratum_groups(self) -> int:
        """Smallest stratum in which every split with a positive ratio can get a group."""
        return max(2, math.ceil(1.0 / min(self.ratios.values()) - 1e-9))


def _order_key(seed: int, group: str) -> str:
    return hashlib.sha256(f"{seed}:{group}".encode("utf-8")).hexdigest()


def group_strata(images: pd.DataFrame, config: SplitConfig) -> pd.DataFrame:
    """One row per group: ``group, n_images, malignant ("0"/"1"/"unknown"), density, stratum``.

    ``images`` needs the group column and the wide ``breastbin`` / ``density`` labels
    (null when missing).
    """
    col = config.group_column
    if images[col].isna().any():
        raise ValueError(f"{int(images[col].isna().sum())} image(s) have no {col}; exclude them before splitting")
    frame = pd.DataFrame({
        "group": images[col].astype(str),
        "malig": pd.to_numeric(images["breastbin"], errors="coerce") if "breastbin" in images else float("nan"),
        "density": images["density"].astype("string") if "density" in images else pd.NA,
    })
    grouped = frame.groupby("group", sort=True)
    out = pd.DataFrame({"n_images": grouped.size()})
    malig = grouped["malig"].max()
    out["malignant"] = malig.map(lambda v: "unknown" if pd.isna(v) else str(int(v)))
    # densest category of the group; letters sort in ACR order A < B < C < D
    dens = grouped["density"].max()
    out["density"] = dens.map(lambda v: "unknown" if pd.isna(v) else str(v))
    out = out.reset_index()

    if config.stratify_density:
        fine = "m=" + out["malignant"] + "|d=" + out["density"]
        sizes = fine.map(fine.value_counts())
        coarse = "m=" + out["malignant"] + "|d=*"
        out["stratum"] = fine.where(sizes >= config.min_stratum_groups, coarse)
    else:
        out["stratum"] = "m=" + out["malignant"] + "|d=*"
    return out


def assign_groups(groups: pd.DataFrame, config: SplitConfig) -> pd.Series:
    """Map each group to a split name (index = group)."""
    order = groups.assign(_k=[_order_key(config.seed, g) for g in groups["group"]])
    order = order.sort_values(["stratum", "_k"], kind="mergesort")
    ratios = config.ratios
    counts = dict.fromkeys(ratios, 0)
    assigned: list[str] = []
    for i in range(len(order)):
        # most-deficient split next; ties go to the earlier split in train/val/test order
        deficit = {s: ratios[s] * (i + 1) - counts[s] for s in ratios}
        best = max(ratios, key=lambda s: (round(deficit[s], 12), -list(ratios).index(s)))
        counts[best] += 1
        assigned.append(best)
    return pd.Series(assigned, index=order["group"].to_numpy(), name="split").sort_index()


def split_images(images: pd.DataFrame, config: SplitConfig) -> pd.Series:
    """Split name per image row (same index as ``images``); all images of a group share one."""
    groups = group_strata(images, config)
    by_group = assign_groups(groups, config)
    return images[config.group_column].astype(str).map(by_group).rename("split")


def stratum_table(images: pd.DataFrame, splits: pd.Series, config: SplitConfig) -> pd.DataFrame:
    """Groups per stratum and split — how well the stratification held."""
    groups = group_strata(images, config)
    per_group = images.assign(split=splits.to_numpy())[[config.group_column, "split"]].drop_duplicates()
    groups = groups.merge(per_group.rename(columns={config.group_column: "group"}), on="group")
    return (groups.groupby(["stratum", "split"]).size().unstack(fill_value=0)
            .reindex(columns=[s for s in SPLITS if s in set(groups["split"])]))


def leaks(rows: pd.DataFrame, unit: str = "patient_pid", across_cohorts: bool = False) -> pd.DataFrame:
    """Units (patients or breasts) found in more than one split: one row per unit with the
    ``cohort/split`` places it was found in. Empty when the split is leak-free.

    Within a cohort any such unit is a leak. ``across_cohorts=True`` also counts a unit seen in
    two cohorts (a patient in hmi/train and inb/test); pseudonyms of different sites can collide
    when their raw ids do, so that finding is a warning to look at, not proof of a leak.
    """
    where = rows["cohort"].astype(str) + "/" + rows["split"].astype(str)
    frame = pd.DataFrame({unit: rows[unit], "cohort": rows["cohort"].astype(str), "where": where}).dropna()
    keys = [unit] if across_cohorts else ["cohort", unit]
    places = frame.drop_duplicates().groupby(keys)["where"].agg(lambda s: sorted(set(s)))
    bad = places[places.map(len) > 1].reset_index()
    return pd.DataFrame({unit: bad[unit].astype(str).to_numpy(),
                         "found_in": [", ".join(v) for v in bad["where"]]}).drop_duplicates(unit).reset_index(drop=True)
