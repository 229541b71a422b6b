"""Manifests: one row per usable image, nothing dropped silently, byte-identical for identical
inputs, readable as-is by pandas, pyarrow and DuckDB."""

import hashlib

import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pytest

from curation import manifests as mf
from curation.home import MammoHome
from curation.split import SplitConfig
from tests.manifest_inputs import synthetic_inputs, write_inputs


def _home(tmp_path, name="home", batches=(("hmi", 20), ("inb", 6), ("vtb", 6))):
    home = MammoHome.from_env(tmp_path / name).ensure()
    for batch, n in batches:
        write_inputs(home, batch, *synthetic_inputs(n, batch=batch))
    return home


def _digests(home):
    return {str(p.relative_to(home.root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for root in (home.manifests, home.manifests_meta) for p in sorted(root.rglob("*.parquet"))}


def test_wide_labels_pivot_one_row_per_image_with_null_label_and_zero_weight_when_missing():
    labels = pd.DataFrame({
        "image_key": ["I-a", "I-a", "I-a", "I-b"], "task": ["breastbin", "density", "view", "view"],
        "label": ["1", None, "ML", "CC"], "u": [0.25, 1.0, 0.0, 0.0], "weight": [0.75, 0.0, 1.0, 1.0],
        "source": ["pathology", None, "dicom_tag", "dicom_tag"]})
    wide = mf.wide_labels(labels)
    assert list(wide.index) == ["I-a", "I-b"]
    assert wide.loc["I-a", "breastbin"] == 1 and wide.loc["I-a", "breastbin_weight"] == 0.75
    assert wide.loc["I-a", "density"] is None and wide.loc["I-a", "density_weight"] == 0.0
    assert wide.loc["I-a", "view"] == "MLO"  # lateral folded into MLO
    assert pd.isna(wide.loc["I-b", "acr"])


def test_an_out_of_vocabulary_label_is_refused_naming_the_image():
    labels = pd.DataFrame({"image_key": ["I-x"], "task": ["acr"], "label": ["7"], "u": [0.0], "weight": [1.0],
                           "source": ["report"]})
    with pytest.raises(ValueError, match=r"image_key=I-x task=acr: acr label '7' is outside"):
        mf.wide_labels(labels)


def test_every_catalogued_image_is_in_a_manifest_or_excluded_with_a_reason():
    catalog, labels, index = synthetic_inputs(10)
    unprocessed, rejected, no_patient, no_breast = catalog["image_key"].iloc[:4]
    index = index[~index["image_key"].isin([unprocessed, rejected])]
    catalog.loc[catalog["image_key"] == no_patient, "patient_pid"] = None
    catalog.loc[catalog["image_key"] == no_breast, "breast_key"] = None
    quarantine = pd.DataFrame({"image_key": [rejected], "reason_code": ["no_breast"]})
    rows, excluded = mf.build_rows(catalog, labels, index, quarantine)
    assert dict(zip(excluded["image_key"], excluded["reason"])) == {
        unprocessed: "not_preprocessed", rejected: "preprocess_quarantined", no_patient: "patient_unknown",
        no_breast: "breast_unknown"}
    assert len(rows) + len(excluded) == len(catalog)
    assert rows["image_key"].is_unique


def test_an_image_without_any_label_row_is_kept_with_all_weights_zero():
    catalog, labels, index = synthetic_inputs(4)
    unlabelled = catalog["image_key"].iloc[0]
    rows, _ = mf.build_rows(catalog, labels[labels["image_key"] != unlabelled], index)
    row = rows.set_index("image_key").loc[unlabelled]
    for task in ("breastbin", "acr", "density", "view"):
        assert pd.isna(row[task]) and row[f"{task}_weight"] == 0.0 and row[f"{task}_u"] == 1.0
    assert row["view_stratum"] == catalog.set_index("image_key").loc[unlabelled, "view"]  # from the DICOM tag


def test_manifests_are_hive_partitioned_by_cohort_and_split_with_inb_test_only_and_vtb_finetune(tmp_path):
    home = _home(tmp_path)
    mf.build_all(home, SplitConfig(seed=0))
    parts = sorted(str(p.relative_to(home.manifests)) for p in home.manifests.glob("cohort=*/split=*/*.parquet"))
    assert parts == ["cohort=hmi/split=test/part-0.parquet", "cohort=hmi/split=train/part-0.parquet",
                     "cohort=inb/split=test/part-0.parquet", "cohort=vtb/split=finetune/part-0.parquet"]


def test_identical_inputs_and_seed_give_byte_identical_manifests(tmp_path):
    a, b = _home(tmp_path, "a"), _home(tmp_path, "b")
    # same content, different row order on disk: the manifests must not notice
    catalog, labels, index = synthetic_inputs(20, batch="hmi")
    write_inputs(b, "hmi", catalog.sample(frac=1, random_state=1), labels.sample(frac=1, random_state=2),
                 index.sample(frac=1, random_state=3))
    mf.build_all(a, SplitConfig(seed=7))
    mf.build_all(b, SplitConfig(seed=7))
    mf.write_dataset_card(a), mf.write_dataset_card(b)
    assert _digests(a) == _digests(b)
    mf.build_all(b, SplitConfig(seed=8))
    assert _digests(a) != _digests(b)


def test_rebuilding_leaves_no_stale_split_behind(tmp_path):
    home = _home(tmp_path)
    mf.build_all(home, SplitConfig(train=0.7, val=0.1, test=0.2))
    assert (home.manifests / "cohort=hmi" / "split=val").is_dir()
    mf.build_all(home, SplitConfig())
    assert not (home.manifests / "cohort=hmi" / "split=val").exists()


def test_manifest_reads_the_same_in_pandas_pyarrow_duckdb_and_read_manifest(tmp_path):
    home = _home(tmp_path)
    rows, _ = mf.build_all(home, SplitConfig())
    ours = mf.read_manifest(home)
    assert list(ours.columns) == [*mf.MANIFEST_COLUMNS, "cohort", "split"]
    assert len(ours) == len(rows) and set(ours["schema_version"]) == {mf.SCHEMA_VERSION}

    dataset = ds.dataset(home.manifests, format="parquet", partitioning="hive")
    assert dataset.schema.field("breastbin").type == mf.MANIFEST_SCHEMA.field("breastbin").type
    assert dataset.to_table(filter=ds.field("split") == "test").num_rows == (ours["split"] == "test").sum()
    via_pandas = pd.read_parquet(home.manifests / "cohort=hmi" / "split=train")
    assert len(via_pandas) == ((ours["cohort"] == "hmi") & (ours["split"] == "train")).sum()

    glob = str(home.manifests / "cohort=*" / "split=*" / "*.parquet")
    counts = duckdb.sql(f"SELECT cohort, split, count(*) AS n, sum(breastbin_weight > 0) AS labelled "
                        f"FROM read_parquet('{glob}', hive_partitioning = true) "
                        f"GROUP BY ALL ORDER BY cohort, split").df()
    expected = ours.groupby(["cohort", "split"]).size().reset_index(name="n")
    assert counts[["cohort", "split", "n"]].astype({"n": int}).equals(expected)


def test_the_manifests_root_holds_manifest_rows_only_and_the_card_and_exclusions_lie_beside_it(tmp_path):
    home = _home(tmp_path)
    catalog, labels, index = synthetic_inputs(20, batch="hmi")
    write_inputs(home, "hmi", catalog, labels, index[index["image_key"] != catalog["image_key"].iloc[0]])
    rows, excluded = mf.build_all(home, SplitConfig())
    card = mf.write_dataset_card(home)
    assert len(excluded) == 1 and len(card) > 0
    assert mf.excluded_path(home).parent == mf.dataset_card_path(home).parent == home.manifests_meta
    assert mf.excluded_path(home).is_file() and mf.dataset_card_path(home).is_file()

    table = ds.dataset(home.manifests, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == len(rows)                       # no card or exclusion rows mixed in
    assert table.column("image_key").null_count == 0 and table.column("cohort").null_count == 0
    assert sorted(p.name for p in home.manifests.iterdir()) == ["cohort=hmi", "cohort=inb", "cohort=vtb"]


def test_a_rebuild_removes_card_and_exclusions_left_inside_the_manifests_root_by_older_versions(tmp_path):
    home = _home(tmp_path)
    for legacy in ("excluded.parquet", "dataset_card.parquet"):
        (home.manifests / legacy).write_bytes(b"old")
    mf.build_all(home, SplitConfig())
    assert sorted(p.name for p in home.manifests.glob("*.parquet")) == []


def test_read_manifest_selects_one_cohort_and_split_and_is_empty_but_typed_when_absent(tmp_path):
    home = _home(tmp_path)
    mf.build_all(home, SplitConfig())
    inb = mf.read_manifest(home, "inb", "test")
    assert set(inb["cohort"]) == {"inb"} and len(inb) == 6 * 4
    empty = mf.read_manifest(home, "inb", "train")
    assert empty.empty and "breastbin_weight" in empty.columns


def test_dataset_card_counts_labelled_images_per_class_and_totals(tmp_path):
    home = _home(tmp_path)
    rows, _ = mf.build_all(home, SplitConfig())
    card = mf.write_dataset_card(home).set_index(["cohort", "split", "task", "class"])["n"]
    inb = rows[rows["cohort"] == "inb"]
    assert card[("inb", "test", "total", "images")] == len(inb)
    assert card[("inb", "test", "total", "patients")] == inb["patient_pid"].nunique()
    assert card[("inb", "test", "breastbin", "1")] == (inb["breastbin"] == 1).sum()
    assert card[("inb", "test", "density", "missing")] == inb["density"].isna().sum()
    assert "| hmi/train |" in mf.card_markdown(card.reset_index())


def test_unknown_cohort_role_is_refused():
    rows = pd.DataFrame({"cohort": ["hmi"], "patient_pid": ["P-1"], "breastbin": [1], "density": ["A"]})
    with pytest.raises(ValueError, match="cohort role for 'hmi' is 'holdout'"):
        mf.assign_cohort_splits(rows, SplitConfig(), {"hmi": "holdout"})
