"""Whole-dataset invariants a row-wise suite cannot state: leaks between splits, every
usable image placed exactly once, and counts that reconcile with the catalogue.

Each function returns the offending rows (pseudonymised keys only), empty when the invariant
holds, so the asset check can both decide and show examples.
"""

from __future__ import annotations

import pandas as pd

from curation.split import leaks

TRAINING_SPLITS = ("train", "val", "finetune")


def patient_leaks(rows: pd.DataFrame, group_by: str = "patient") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(blocking, warning) leaks.

    Blocking: a split unit (patient, or breast with ``group_by="breast"``) in two splits of one
    cohort; or a patient in a training split (train/val/finetune) of one cohort and the test split
    of another — the external test set would have seen that patient in training.
    Warning: with breast-wise grouping, a patient whose two breasts landed in different splits
    (the paper's protocol allows it; it is still optimistic for the test score).
    """
    unit = "patient_pid" if group_by == "patient" else "breast_key"
    blocking = [leaks(rows, unit).rename(columns={unit: "key"}).assign(kind=f"{unit} in two splits of one cohort")]
    warning = pd.DataFrame(columns=["key", "found_in", "kind"])
    if group_by == "breast":
        warning = leaks(rows, "patient_pid").rename(columns={"patient_pid": "key"}).assign(
            kind="patient's breasts in different splits (breast-wise grouping)")

    places = rows.assign(training=rows["split"].isin(TRAINING_SPLITS), testing=rows["split"] == "test")
    per_patient = places.groupby("patient_pid").agg(
        training=("training", "any"), testing=("testing", "any"), cohorts=("cohort", "nunique"))
    cross = per_patient[(per_patient["cohorts"] > 1) & per_patient["training"] & per_patient["testing"]]
    if len(cross):
        found = leaks(rows[rows["patient_pid"].isin(cross.index)], "patient_pid", across_cohorts=True)
        blocking.append(found.rename(columns={"patient_pid": "key"}).assign(
            kind="patient in a training split and in another cohort's test split"))
    block = pd.concat([b for b in blocking if len(b)], ignore_index=True) if any(len(b) for b in blocking) \
        else pd.DataFrame(columns=["key", "found_in", "kind"])
    return block.reset_index(drop=True), warning.reset_index(drop=True)


def placement_errors(rows: pd.DataFrame, catalog: pd.DataFrame, image_labels: pd.DataFrame,
                     cache_index: pd.DataFrame, excluded: pd.DataFrame) -> pd.DataFrame:
    """Images that break "every labelled, preprocessed image is in exactly one manifest row":
    ``image_key, problem`` for labelled+preprocessed+catalogued images missing from the manifests
    (and not excluded with a reason), and for image keys in more than one manifest row."""
    labelled = set(image_labels["image_key"].dropna().astype(str)) if len(image_labels) else set()
    usable = labelled & set(cache_index["image_key"].dropna().astype(str)) & set(catalog["image_key"].astype(str))
    excused = set(excluded["image_key"].astype(str))
    counts = rows["image_key"].astype(str).value_counts()
    missing = sorted(usable - set(counts.index) - excused)
    duplicated = sorted(counts[counts > 1].index)
    return pd.DataFrame({"image_key": missing + duplicated,
                         "problem": ["labelled and preprocessed but in no manifest"] * len(missing)
                         + ["in more than one manifest row"] * len(duplicated)})


def reconcile(rows: pd.DataFrame, excluded: pd.DataFrame, catalog: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per batch: catalogued = in manifests + excluded (by reason). Returns (counts table,
    offending images: catalogued but nowhere, or in a manifest but not catalogued)."""
    cat_keys = catalog[["image_key", "batch"]].drop_duplicates("image_key")
    in_rows = set(rows["image_key"].astype(str))
    in_excl = set(excluded["image_key"].astype(str))
    unaccounted = cat_keys[~cat_keys["image_key"].isin(in_rows | in_excl)]
    foreign = sorted(in_rows - set(cat_keys["image_key"]))
    problems = pd.DataFrame({
        "image_key": list(unaccounted["image_key"]) + foreign,
        "problem": ["catalogued but neither in a manifest nor excluded"] * len(unaccounted)
        + ["in a manifest but not in the catalogue"] * len(foreign)})

    table = cat_keys.groupby("batch").size().rename("catalogued").to_frame()
    batch_of = cat_keys.set_index("image_key")["batch"]
    table["in_manifest"] = rows["image_key"].map(batch_of).value_counts().reindex(table.index).fillna(0).astype(int)
    if len(excluded):
        by_reason = excluded.groupby(["batch", "reason"]).size().unstack(fill_value=0)
        table = table.join(by_reason).fillna(0)
    table["unaccounted"] = unaccounted.groupby("batch").size().reindex(table.index).fillna(0)
    return table.astype(int).reset_index(), problems
