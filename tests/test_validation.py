"""The GX suites catch what would silently poison training, and say where."""

import pandas as pd
import pytest

from curation import manifests as mf
from curation.split import SplitConfig
from curation.validation import SUITE_VERSIONS, suite_fingerprint, validate
from tests.manifest_inputs import synthetic_inputs


@pytest.fixture(scope="module")
def clean():
    catalog, labels, index = synthetic_inputs(12)
    rows, _ = mf.build_rows(catalog, labels, index)
    rows = mf.assign_cohort_splits(rows, SplitConfig()).drop(columns=["batch"])
    return catalog, labels, rows


def _failing(report):
    return {(f.expectation, f.column) for f in report.failures}


@pytest.mark.parametrize("suite, which", [("catalog", 0), ("labels", 1), ("manifest", 2)])
def test_contract_shaped_data_meets_every_expectation(clean, suite, which):
    report = validate(clean[which], suite)
    assert report.success, report.failures_markdown()
    assert report.n_expectations > 10 and report.suite_version == SUITE_VERSIONS[suite]


def test_an_uncertainty_outside_0_1_fails_and_names_the_image(clean):
    labels = clean[1].copy()
    labels.loc[5, "u"] = 1.5
    report = validate(labels, "labels")
    assert not report.success
    bad = [f for f in report.failures if f.expectation == "expect_column_values_to_be_between" and f.column == "u"]
    assert bad and bad[0].examples == [{"u": 1.5, "image_key": labels.loc[5, "image_key"],
                                        "task": labels.loc[5, "task"]}]


def test_a_weight_on_a_missing_label_fails(clean):
    labels = clean[1].copy()
    labels.loc[2, ["label", "weight"]] = [None, 0.7]
    report = validate(labels, "labels")
    assert ("expect_column_values_to_be_in_set", "weight") in _failing(report)
    assert "weight is 0 when label is missing" in report.failures_markdown()


def test_a_present_label_with_zero_weight_or_weight_not_1_minus_u_fails(clean):
    rows = clean[2].copy()
    rows.loc[0, "acr_weight"] = 0.0
    rows.loc[1, "density_weight"] = 0.5
    failing = _failing(validate(rows, "manifest"))
    assert ("expect_column_values_to_be_between", "acr_weight") in failing
    assert ("expect_column_pair_values_to_sum_to_one", "density_u+density_weight") in failing


def test_a_weight_rounded_to_6_decimals_like_the_label_miner_stores_it_passes(clean):
    labels = clean[1].copy()
    present = labels["label"].notna()
    labels.loc[present, "u"] = 0.1234567
    labels.loc[present, "weight"] = round(1 - 0.1234567, 6)
    assert validate(labels, "labels").success


def test_a_phi_looking_column_or_a_raw_patient_id_fails(clean):
    catalog = clean[0].assign(PatientName="DOE^JANE")
    catalog.loc[0, "patient_pid"] = "123456"
    report = validate(catalog, "catalog")
    failing = {f.expectation: f for f in report.failures}
    assert failing["expect_no_phi_like_columns"].observed == ["PatientName"]
    assert ("expect_column_values_to_match_regex", "patient_pid") in _failing(report)


def test_duplicate_images_out_of_domain_values_and_bad_sizes_fail(clean):
    catalog = pd.concat([clean[0], clean[0].head(1)], ignore_index=True)
    catalog.loc[1, "laterality"] = "B"
    catalog.loc[2, "rows"] = 10
    failing = _failing(validate(catalog, "catalog"))
    assert {("expect_column_values_to_be_unique", "image_key"), ("expect_column_values_to_be_in_set", "laterality"),
            ("expect_column_values_to_be_between", "rows")} <= failing


def test_manifest_width_must_be_a_multiple_of_64_and_inb_test_only(clean):
    rows = clean[2].copy()
    rows.loc[0, "width"] = 100
    rows.loc[1, "cohort"] = "inb"  # an inb image in train
    report = validate(rows, "manifest")
    assert ("expect_column_values_to_be_in_set", "width") in _failing(report)
    assert "inb is an external test cohort only" in report.failures_markdown()


def test_a_missing_column_is_reported_not_raised(clean):
    report = validate(clean[1].drop(columns=["u"]), "labels")
    assert not report.success
    assert any(f.column == "u" and f.error for f in report.failures)
    assert report.to_dict()["failures"]  # JSON-safe for check metadata


def test_suite_fingerprints_are_stable_and_distinct():
    assert suite_fingerprint("labels") == suite_fingerprint("labels")
    assert len({suite_fingerprint(s) for s in ("catalog", "labels", "manifest")}) == 3
    with pytest.raises(ValueError, match="unknown suite 'cat'"):
        suite_fingerprint("cat")


def test_labels_as_read_back_from_parquet_pass_and_numeric_labels_fail(clean, tmp_path):
    path = tmp_path / "image_labels.parquet"
    clean[1].to_parquet(path, index=False)
    assert validate(pd.read_parquet(path), "labels").success  # pandas 3 "str" dtype
    numeric = clean[1][clean[1]["task"] == "acr"].assign(label=lambda f: f["label"].astype(int))
    assert ("expect_column_values_to_be_in_set", "label") in _failing(validate(numeric, "labels"))


def test_a_catalogue_without_sop_class_fails_the_catalog_suite(clean):
    report = validate(clean[0].drop(columns=["sop_class"]), "catalog")
    assert ("expect_table_columns_to_match_set", None) in _failing(report)


@pytest.mark.parametrize("suite", ["catalog", "labels", "manifest"])
def test_each_suite_requires_exactly_the_columns_of_its_table_schema(suite):
    from curation.schemas import CATALOG_SCHEMA, IMAGE_LABELS_SCHEMA, MANIFEST_PARTITION_COLUMNS, MANIFEST_SCHEMA
    from curation.validation.suites import SUITES

    expected = {"catalog": CATALOG_SCHEMA.names, "labels": IMAGE_LABELS_SCHEMA.names,
                "manifest": [*MANIFEST_SCHEMA.names, *MANIFEST_PARTITION_COLUMNS]}[suite]
    column_rules = [e for e in SUITES[suite]() if type(e).__name__ == "ExpectTableColumnsToMatchSet"]
    assert [sorted(e.column_set) for e in column_rules] == [sorted(expected)]
