"""The label assets materialise in-process on a tiny generated cohort, pseudonymised, with review decisions."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from assets.ingest import ingest_batch
from assets.labels import image_labels, label_table_problems, mine_batch_labels
from curation.demo_cohort import generate_cohort
from pipelines.resources import default_resources

LABEL_ASSETS = ["report_mentions", "breast_labels", "image_labels"]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("mammo_home")
    generate_cohort("hmi", 4, 11, root / "cohorts" / "hmi", height=64, defects=False)
    return root


def materialise(root, selection):
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("batch", ["hmi"])
    return dg.materialize([ingest_batch, mine_batch_labels, image_labels, dg.AssetSpec("adjudications")],
                          selection=selection, partition_key="hmi", instance=instance,
                          resources=default_resources(str(root)))


def test_label_assets_materialise_with_table_one_metadata_and_no_raw_identifiers(home):
    result = materialise(home, ["dicom_catalog", "quarantine"] + LABEL_ASSETS)
    assert result.success
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["breast_labels_well_formed"] is True
    meta = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert "| task | classes | missing | share u>0 |" in meta["breast_labels"]["table_1"].value
    assert set(meta["breast_labels"]["class_counts"].value) == {"acr", "breastbin", "density"}

    labels_dir = home / "labels" / "hmi"
    breast = pd.read_parquet(labels_dir / "breast_labels.parquet")
    images = pd.read_parquet(labels_dir / "image_labels.parquet")
    catalog = pd.read_parquet(home / "catalog" / "hmi" / "catalog.parquet")
    reports = pd.read_csv(home / "cohorts" / "hmi" / "reports.csv", dtype=str)

    # pseudonymised before anything was written
    blob = b"".join(p.read_bytes() for p in labels_dir.glob("*.parquet"))
    for raw in list(reports["accession_number"]) + list(reports["patient_id"]):
        assert raw.encode() not in blob
    assert set(breast["breast_key"]) >= set(catalog["breast_key"])
    # one row per catalogued image and task, view from the tags
    assert len(images) == 4 * catalog["image_key"].nunique()
    assert not images.duplicated(["image_key", "task"]).any()
    view = images[images["task"] == "view"].set_index("image_key")["label"]
    expected = catalog.set_index("image_key")["view"].map({"CC": "CC", "MLO": "MLO", "ML": "MLO"})
    assert (view == expected.reindex(view.index)).all()
    # an image's breast labels are its breast's labels
    acr = images[images["task"] == "acr"].merge(breast[breast["task"] == "acr"], on="breast_key", suffixes=("", "_b"))
    assert (acr["label"].fillna("-") == acr["label_b"].fillna("-")).all()


def test_review_decisions_reach_image_labels(home):
    materialise(home, ["dicom_catalog", "quarantine"] + LABEL_ASSETS)
    images = pd.read_parquet(home / "labels" / "hmi" / "image_labels.parquet")
    target = images[images["task"] == "density"].iloc[0]
    corrected = "A" if target["label"] != "A" else "D"
    pd.DataFrame([{"decision_id": "d1", "target_level": "breast", "target_key": target["breast_key"],
                   "task": "density", "decision": "correct", "label": corrected, "annotator": "a1",
                   "decided_at": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).isoformat(),
                   "previous_label": target["label"], "previous_u": target["u"], "app_version": "test"}]
                 ).to_parquet(home / "labels" / "adjudications.parquet")
    assert materialise(home, ["image_labels"]).success
    after = pd.read_parquet(home / "labels" / "hmi" / "image_labels.parquet")
    same_breast = after[(after["breast_key"] == target["breast_key"]) & (after["task"] == "density")]
    assert (same_breast["label"] == corrected).all()
    assert (same_breast["source"] == "review").all() and (same_breast["u"] == 0.0).all()


def test_the_label_check_catches_a_weight_that_does_not_match_u():
    frame = pd.DataFrame({"task": ["acr", "acr", "density"], "label": ["4", None, "E"], "u": [0.2, 1.0, 0.0],
                          "weight": [1.0, 0.0, 1.0]})
    problems = label_table_problems(frame)
    assert "a present label has weight != 1 - u or weight <= 0" in problems
    assert any(p.startswith("density: 1 labels outside") for p in problems)
