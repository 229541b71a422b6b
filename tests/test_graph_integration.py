"""The whole curation graph on a tiny generated cohort, in-process: every per-batch asset, then the
cross-batch curation assets (manifests, dataset card, review queue). Training is covered by the
training-asset tests; here the point is the data path and its invariants, including privacy."""

import dagster as dg
import pandas as pd

from curation.file_keys import lookup_path, read_lookup
import pytest

from curation.demo_cohort import generate_cohort
from curation.home import MammoHome
from curation.phi_audit import audit, harvest_phi
from pipelines.definitions import BATCH_JOB, build_definitions

pytestmark = pytest.mark.slow

CURATION_KEYS = ["split_manifests", "dataset_card", "review_queue", "adjudications"]


@pytest.fixture(scope="module")
def materialised(tmp_path_factory):
    root = tmp_path_factory.mktemp("home")
    home = MammoHome.from_env(root).ensure()
    for i, (cohort, patients) in enumerate({"hmi": 12, "inb": 5, "vtb": 6}.items()):
        generate_cohort(cohort, patients, 100 + i, home.batch_root(cohort), height=256)
    defs = build_definitions(str(root))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("batch", home.batches())
    batch_results = {b: defs.resolve_job_def(BATCH_JOB).execute_in_process(partition_key=b, instance=instance)
                     for b in home.batches()}
    present = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert set(CURATION_KEYS) <= present, f"curation assets missing from the code location: {set(CURATION_KEYS) - present}"
    selection = CURATION_KEYS
    downstream = dg.materialize(list(defs.assets), selection=selection, instance=instance,
                                resources=dict(defs.resources))
    return home, batch_results, downstream, selection


def test_every_batch_materialises_and_all_checks_pass(materialised):
    _, batch_results, downstream, _ = materialised
    for batch, result in batch_results.items():
        assert result.success, batch
        failed = [c.check_name for c in result.get_asset_check_evaluations() if not c.passed]
        assert failed == [], batch
    assert downstream.success
    assert all(c.passed for c in downstream.get_asset_check_evaluations())


def test_every_file_is_catalogued_or_quarantined_and_planted_defects_are_quarantined(materialised):
    home = materialised[0]
    for batch in home.batches():
        files = [p for p in (home.batch_root(batch) / "dicom").rglob("*") if p.is_file()]
        cat = pd.read_parquet(home.catalog_path(batch))
        quar = pd.read_parquet(home.quarantine_path(batch))
        assert len(files) == len(cat) + len(quar)
        truth = pd.read_parquet(home.batch_root(batch) / "truth.parquet")
        planted = truth[(truth["level"] == "image") & truth["planted_defect"].notna()]
        paths = {k: v.decode() for k, v in read_lookup(lookup_path(home.root, batch)).items()}  # private lookup
        assert set(planted["file"]) <= set(quar["file_key"].map(paths)) | _preprocess_quarantined(home, batch, paths)


def _preprocess_quarantined(home, batch, paths) -> set:
    path = home.cache_quarantine_path(batch)
    return set(pd.read_parquet(path)["file_key"].map(paths)) if path.exists() else set()


def test_no_identifying_value_reaches_any_output(materialised):
    home = materialised[0]
    values = harvest_phi(home.cohorts)
    kinds = set(values.values())
    assert {"PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "InstitutionName",
            "ReferringPhysicianName"} <= kinds
    hits, scanned, _ = audit(home.root, values)
    assert scanned > 10
    assert hits == []


def test_manifests_exist_for_every_cohort_role(materialised):
    home = materialised[0]
    parts = {p.parent.relative_to(home.manifests).as_posix() for p in home.manifests.rglob("*.parquet")
             if p.parent != home.manifests}
    assert {"cohort=hmi/split=train", "cohort=hmi/split=test", "cohort=inb/split=test",
            "cohort=vtb/split=finetune"} <= parts
