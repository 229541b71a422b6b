"""Ingest: every file ends in exactly one of catalogue / quarantine, with a reason a person can act on."""

import hashlib
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curation.catalog import QUARANTINE_SCHEMA, build_catalog, catalog_file, write_table
from curation.pseudonym import pseudonymise
from tests.dicom_factory import PHI, make_mg

KEY = b"test-key"


@pytest.fixture()
def planted_batch(tmp_path) -> Path:
    """A batch with 4 good images and one file per quarantine reason."""
    root = tmp_path / "cohorts" / "hmi"
    d = root / "dicom"
    for i, (lat, view) in enumerate([("L", "CC"), ("L", "MLO"), ("R", "CC"), ("R", "MLO")]):
        make_mg(d / f"study1/img{i}.dcm", sop_uid=f"1.2.3.{i}", laterality=lat, view=view)
    good = make_mg(d / "study2/good.dcm", sop_uid="1.2.3.9", laterality="R", view="CC")
    data = good.read_bytes()
    (d / "bad/truncated.dcm").parent.mkdir(parents=True)
    (d / "bad/truncated.dcm").write_bytes(data[: len(data) - 500])
    good.unlink()
    (d / "bad/notes.dcm").write_text("this is a text file somebody exported as .dcm\n")
    make_mg(d / "bad/ct.dcm", sop_uid="1.2.3.20", modality="CT")
    make_mg(d / "bad/nopixels.dcm", sop_uid="1.2.3.21", with_pixels=False)
    shutil.copy(d / "study1/img0.dcm", d / "study1/zz_copy_of_img0.dcm")
    make_mg(d / "bad/nolat.dcm", sop_uid="1.2.3.22", laterality=None)
    make_mg(d / "bad/tomo.dcm", sop_uid="1.2.3.23", frames=3)
    return root


def test_every_file_is_catalogued_or_quarantined_with_its_reason(planted_batch):
    result = build_catalog(planted_batch, "hmi", KEY)
    assert result.files_found == 11
    assert result.accounted
    assert len(result.catalog) == 4
    reasons = dict(zip(result.quarantine["file_key"].map(_paths(result)), result.quarantine["reason_code"]))
    assert reasons == {
        "dicom/bad/truncated.dcm": "truncated_pixel_data",
        "dicom/bad/notes.dcm": "not_dicom",
        "dicom/bad/ct.dcm": "not_mammography",
        "dicom/bad/nopixels.dcm": "no_pixel_data",
        "dicom/study1/zz_copy_of_img0.dcm": "duplicate_sop_instance",
        "dicom/bad/nolat.dcm": "laterality_unknown",
        "dicom/bad/tomo.dcm": "multi_frame",
    }
    assert result.quarantine["message"].str.len().min() > 30  # a sentence, not a code


def _paths(result) -> dict[str, str]:
    """file_key -> relative path, from the private lookup (tables carry only the key)."""
    return dict(zip(result.files["file_key"], result.files["rel_path_text"]))


def test_duplicate_message_names_the_file_that_was_kept_by_its_key(planted_batch):
    result = build_catalog(planted_batch, "hmi", KEY)
    q = result.quarantine.set_index("reason_code")
    kept = {v: k for k, v in _paths(result).items()}["dicom/study1/img0.dcm"]
    assert kept in q.loc["duplicate_sop_instance", "message"]
    assert "study1" not in q.loc["duplicate_sop_instance", "message"]


def test_catalogue_rows_are_pseudonymised_and_carry_tag_provenance(planted_batch):
    cat = build_catalog(planted_batch, "hmi", KEY).catalog
    assert set(cat["patient_pid"]) == {pseudonymise(PHI["PatientID"], "patient", KEY)}
    assert set(cat["laterality_source"]) == {"ImageLaterality"}
    assert set(cat["view_source"]) == {"ViewCodeSequence"}
    assert cat["view_votes"].str.startswith("ViewCodeSequence=").all()       # every tag that spoke, as codes
    assert cat["laterality_votes"].str.startswith("ImageLaterality=").all()
    assert cat["breast_key"].str.endswith((":L", ":R")).all()
    assert set(cat["cohort"]) == {"hmi"}
    flat = cat.astype(str).to_csv()
    for value in PHI.values():
        assert value not in flat


def test_same_files_and_key_give_byte_identical_tables(planted_batch, tmp_path):
    digests = []
    for run in range(2):
        result = build_catalog(planted_batch, "hmi", KEY)
        out = tmp_path / f"run{run}.parquet"
        write_table(result.quarantine, QUARANTINE_SCHEMA, out)
        digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
        digests.append(pd.util.hash_pandas_object(result.catalog).sum())
    assert digests[0] == digests[2] and digests[1] == digests[3]


def test_parallel_workers_give_the_same_catalogue(planted_batch, monkeypatch):
    from curation import fanout

    monkeypatch.setattr(fanout, "POOL_MIN_WORK_PER_WORKER_S", 0.0)  # a real pool, though the batch is tiny
    for i in range(40):  # files enough for several chunks per worker
        make_mg(planted_batch / f"dicom/more/m{i}.dcm", sop_uid=f"1.2.4.{i}", laterality="L", view="CC")
    serial = build_catalog(planted_batch, "hmi", KEY)
    parallel = build_catalog(planted_batch, "hmi", KEY, workers=2)
    pd.testing.assert_frame_equal(serial.catalog, parallel.catalog)
    pd.testing.assert_frame_equal(serial.quarantine, parallel.quarantine)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.binary(max_size=4096))
def test_arbitrary_bytes_never_crash_ingest(tmp_path, junk):
    root = tmp_path / "b"
    path = root / "dicom" / "x.dcm"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00" * 128 + b"DICM" + junk if junk[:1] == b"\x01" else junk)
    out = catalog_file(path, root, "b", KEY)
    assert set(out) <= {"ok", "reject"}


def test_ingest_asset_materialises_with_the_accounting_check(planted_batch, tmp_path):
    from assets.ingest import ingest_batch
    from pipelines.resources import default_resources

    home = planted_batch.parent.parent
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("batch", ["hmi"])
    result = dg.materialize([ingest_batch], partition_key="hmi", instance=instance,
                            resources=default_resources(str(home)))
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert [(c.check_name, c.passed) for c in checks] == [("every_file_accounted_for", True)]
    cat = pd.read_parquet(home / "catalog/hmi/catalog.parquet")
    quar = pd.read_parquet(home / "catalog/hmi/quarantine.parquet")
    assert len(cat) + len(quar) == 11
    mats = {m.asset_key.to_user_string(): m.metadata for m in result.get_asset_materialization_events()
            and [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]}
    assert mats["dicom_catalog"]["dagster/row_count"].value == 4
    assert mats["quarantine"]["reasons"].value["duplicate_sop_instance"] == 1


def test_no_table_and_no_dagster_metadata_carries_a_folder_or_file_name(tmp_path):
    """Real exports name folders <Family>_<Given>_<MRN>: those names are PHI."""
    from assets.ingest import ingest_batch
    from curation.file_keys import lookup_path, read_lookup
    from pipelines.resources import default_resources

    home = tmp_path / "home"
    d = home / "cohorts/hmi/dicom/Quixotica_Zebulon_MRN99887766"
    make_mg(d / "Zebulon_left_cc.dcm", sop_uid="1.2.3.1")
    (d / "Zebulon_notes.txt").write_text("junk")
    make_mg(d / "Zebulon_dup.dcm", sop_uid="1.2.3.1")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("batch", ["hmi"])
    result = dg.materialize([ingest_batch], partition_key="hmi", instance=instance,
                            resources=default_resources(str(home)))
    assert result.success
    tables = [pd.read_parquet(home / "catalog/hmi" / name) for name in ("catalog.parquet", "quarantine.parquet")]
    events = [str(e.event_specific_data.materialization.metadata) for e in result.get_asset_materialization_events()]
    text = " ".join([t.astype(str).to_csv() for t in tables] + events)
    for component in ("Quixotica", "Zebulon", "MRN99887766", "notes"):
        assert component not in text
    lookup = read_lookup(lookup_path(home, "hmi"))  # engineers find the file through the private lookup
    assert sorted(lookup.values())[0].startswith(b"dicom/Quixotica_Zebulon_MRN99887766/")
    assert set(tables[0]["file_key"]) | set(tables[1]["file_key"]) == set(lookup)
