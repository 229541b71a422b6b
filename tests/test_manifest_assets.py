"""The blocking checks on split_manifests stop training when the data is not trustworthy."""

import dagster as dg
import pandas as pd
from assets import manifests as am
from curation.home import MammoHome
from pipelines.resources import default_resources
from curation import manifests as mf
from curation.split import SplitConfig
from tests.manifest_inputs import synthetic_inputs, write_inputs

ran = []


@dg.asset(deps=[am.split_manifests])
def trainer() -> dg.MaterializeResult:
    """Stands in for mtl_model: must not run on untrustworthy manifests."""
    ran.append("trainer")
    return dg.MaterializeResult()


def _materialize(root, run_config=None):
    ran.clear()
    return dg.materialize([am.split_manifests, am.dataset_card, trainer, *am.CHECKS],
                          instance=dg.DagsterInstance.ephemeral(), resources=default_resources(str(root)),
                          run_config=run_config, raise_on_error=False)


def _checks(result):
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _materialized(result):
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_clean_inputs_pass_every_check_and_training_runs(tmp_path):
    home = MammoHome.from_env(tmp_path).ensure()
    for batch, n in (("hmi", 10), ("inb", 3), ("vtb", 3)):
        write_inputs(home, batch, *synthetic_inputs(n, batch=batch))
    result = _materialize(tmp_path)
    assert result.success
    assert {name: e.passed for name, e in _checks(result).items()} == dict.fromkeys(
        ["catalog_expectations", "labels_expectations", "manifest_expectations", "no_patient_leak",
         "every_image_once", "counts_reconcile"], True)
    assert _materialized(result) == {"split_manifests", "dataset_card", "trainer"} and ran == ["trainer"]
    assert "| hmi/train |" in result.asset_materializations_for_node("dataset_card")[0].metadata["table_1"].value


def test_a_leak_a_bad_u_and_a_weight_on_a_missing_label_block_training(tmp_path):
    home = MammoHome.from_env(tmp_path).ensure()
    hmi_catalog, hmi_labels, hmi_index = synthetic_inputs(10, batch="hmi")
    write_inputs(home, "hmi", hmi_catalog, hmi_labels, hmi_index)

    # leak: the external test cohort holds a patient the hmi cohort trains on (same PatientID);
    # the hmi split does not depend on other cohorts, so the trained patient is known in advance
    hmi_rows, _ = mf.build_rows(hmi_catalog, hmi_labels, hmi_index)
    hmi_rows = mf.assign_cohort_splits(hmi_rows, SplitConfig())
    trained = hmi_rows.loc[hmi_rows["split"] == "train", "patient_pid"].iloc[0]
    inb_catalog, inb_labels, inb_index = synthetic_inputs(3, batch="inb")
    inb_catalog.loc[inb_catalog["patient_pid"] == inb_catalog["patient_pid"].iloc[0], "patient_pid"] = trained
    # bad u and a weight on a missing label
    inb_labels.loc[0, "u"] = 1.5
    inb_labels.loc[1, ["label", "weight"]] = [None, 0.6]
    write_inputs(home, "inb", inb_catalog, inb_labels, inb_index)

    result = _materialize(tmp_path)
    checks = _checks(result)
    assert not result.success
    assert "trainer" not in _materialized(result) and ran == []  # downstream never ran
    assert "dataset_card" not in _materialized(result)

    assert trained in set(pd.read_parquet(home.manifests / "cohort=hmi" / "split=train")["patient_pid"])
    assert checks["no_patient_leak"].passed is False
    leak = checks["no_patient_leak"].metadata["leak_examples"].value
    assert trained in leak and "hmi/train" in leak and "inb/test" in leak

    labels = checks["labels_expectations"]
    assert labels.passed is False
    failures = {(f["expectation"], f["column"]): f for f in labels.metadata["failures"].value}
    bad_u = failures[("expect_column_values_to_be_between", "u")]
    assert bad_u["examples"][0]["image_key"] == inb_labels.loc[0, "image_key"] and bad_u["examples"][0]["u"] == 1.5
    assert failures[("expect_column_values_to_be_in_set", "weight")]["examples"][0]["weight"] == 0.6
    assert checks["manifest_expectations"].passed is False  # the bad u reached the manifest too
    assert checks["catalog_expectations"].passed is True


def test_a_patient_leak_alone_blocks_training(tmp_path):
    home = MammoHome.from_env(tmp_path).ensure()
    hmi = synthetic_inputs(10, batch="hmi")
    write_inputs(home, "hmi", *hmi)
    rows = mf.assign_cohort_splits(mf.build_rows(*hmi)[0], SplitConfig())
    trained = rows.loc[rows["split"] == "train", "patient_pid"].iloc[-1]
    inb_catalog, inb_labels, inb_index = synthetic_inputs(2, batch="inb")
    inb_catalog["patient_pid"] = trained  # both inb patients are one hmi training patient
    write_inputs(home, "inb", inb_catalog, inb_labels, inb_index)
    result = _materialize(tmp_path)
    failed = {name for name, e in _checks(result).items() if not e.passed}
    assert failed == {"no_patient_leak"}
    assert ran == [] and not result.success


def test_an_invalid_split_ratio_fails_the_run_naming_the_field(tmp_path):
    home = MammoHome.from_env(tmp_path).ensure()
    write_inputs(home, "hmi", *synthetic_inputs(4))
    result = _materialize(tmp_path, {"ops": {"split_manifests": {"config": {"train": 0.9, "test": 0.2}}}})
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "must sum to 1" in str(failure) and ran == []


def test_the_assets_and_checks_are_part_of_the_code_location():
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    assert {"split_manifests", "dataset_card"} <= {k.to_user_string() for k in graph.get_all_asset_keys()}
    checks = {k.name for k in graph.asset_check_keys}
    assert {"catalog_expectations", "labels_expectations", "no_patient_leak", "counts_reconcile"} <= checks
