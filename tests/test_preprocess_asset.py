"""The ``preprocessed_images`` asset materialised in-process on a tiny batch."""

from __future__ import annotations

import hashlib

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from assets.preprocessing import preprocessed_images
from curation.file_keys import lookup_frame, lookup_path, write_lookup
from curation.home import MammoHome
from curation.preprocess.phantom import phantom_dataset, write_phantom
from pipelines.resources import default_resources


@pytest.fixture()
def home(tmp_path):
    home = MammoHome.from_env(tmp_path / "mh").ensure()
    dicom = home.batch_root("b") / "dicom"
    dicom.mkdir(parents=True)
    write_phantom(dicom / "a.dcm", 256, 200, "L", seed=1, window=(2048, 4096))
    write_phantom(dicom / "b.dcm", 256, 200, "R", seed=2, window=(2048, 4096))
    phantom_dataset(np.zeros((256, 200), np.uint16), window=(2048, 4096)).save_as(
        dicom / "c.dcm", enforce_file_format=True)
    rows, keys = [], []
    for name, lat in (("a", "L"), ("b", "L"), ("c", "R")):  # b is a right breast catalogued as L
        path = f"dicom/{name}.dcm"
        sha = hashlib.sha256((home.batch_root("b") / path).read_bytes()).hexdigest()
        rows.append({"image_key": f"img-{name}", "batch": "b", "file_key": f"F-{name}", "sha256": sha,
                     "laterality": lat})
        keys.append((f"F-{name}", "b", path.encode()))
    home.catalog_path("b").parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(home.catalog_path("b"), index=False)
    write_lookup(lookup_frame(keys), lookup_path(home.root, "b"))
    return home


def _materialise(home):
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("batch", ["b"])
    return dg.materialize(
        [preprocessed_images], partition_key="b", instance=instance,
        resources=default_resources(str(home.root)),  # the code location's own resource set
        run_config={"ops": {"preprocessed_images": {"config": {"height": 64, "mask_height": 128}}}})


def test_the_asset_writes_the_batch_index_quarantine_and_a_contact_sheet(home):
    result = _materialise(home)
    assert result.success
    index = pd.read_parquet(home.cache_index_path("b"))
    quarantine = pd.read_parquet(home.cache_quarantine_path("b"))
    assert sorted(index["image_key"]) == ["img-a", "img-b"]
    assert list(quarantine["reason_code"]) == ["blank_image"] and quarantine["batch"].eq("b").all()
    b = index.set_index("image_key").loc["img-b"]
    assert b["flipped"] and b["orientation_disagreement"] and (b["laterality_tag"], b["laterality_pixels"]) == ("L", "R")
    assert all((home.cache / p).is_file() for p in index["cache_path"])

    meta = result.asset_materializations_for_node("preprocessed_images")[0].metadata
    assert meta["quarantined"].value == 1 and meta["orientation_disagreements"].value == 1
    assert "blank_image" in meta["reasons"].value and "data:image/png;base64," in meta["contact_sheet"].value
    assert (home.cache / "b" / "contact_sheet.png").is_file()
    checks = result.get_asset_check_evaluations()
    assert [c.passed for c in checks] == [True]


def test_rematerialising_the_batch_reuses_the_cache(home):
    _materialise(home)
    meta = _materialise(home).asset_materializations_for_node("preprocessed_images")[0].metadata
    assert meta["processed_now"].value == 0 and meta["from_cache"].value == 2
