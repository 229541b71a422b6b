"""The cache and the CLI: every file ends in the index or in quarantine with a reason, re-runs
cost nothing, results are byte-identical, and the index has the columns benchmarks rely on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydicom.uid import RLELossless
from typer.testing import CliRunner

from curation.preprocess import cache as C
from curation.preprocess.config import PreprocessConfig
from curation.preprocess.phantom import phantom_dataset, phantom_pixels, write_phantom
from curation.preprocess.runner import WorkItem, items_from_folder, run

CONFIG = PreprocessConfig(height=64, mask_height=128)


@pytest.fixture()
def dicom_dir(tmp_path):
    """Two good images (L, and R stored RLE-compressed in a subfolder) and three bad ones."""
    d = tmp_path / "dicom"
    (d / "sub").mkdir(parents=True)
    write_phantom(d / "left.dcm", 192, 160, "L", seed=1, window=(2048, 4096))
    px, _ = phantom_pixels(192, 160, "R", seed=2)
    ds = phantom_dataset(px, laterality="R", window=(2048, 4096))
    ds.compress(RLELossless)
    ds.save_as(d / "sub" / "right_rle", enforce_file_format=True)  # DICOM files often lack an extension
    black = phantom_dataset(np.zeros((192, 160), np.uint16), window=(2048, 4096))
    black.save_as(d / "black.dcm", enforce_file_format=True)
    write_phantom(d / "tiny.dcm", 24, 20, "L")
    (d / "readme.txt").write_text("not a DICOM file")
    return d


def _paths(res) -> dict[str, str]:
    """file_key -> path relative to the folder, from the private lookup (rows carry only the key)."""
    return dict(zip(res.files["file_key"], res.files["rel_path_text"]))


def test_every_file_is_indexed_or_quarantined_with_a_reason(dicom_dir, tmp_path):
    res = run(items_from_folder(dicom_dir), tmp_path / "cache", CONFIG)
    paths = _paths(res)
    assert sorted(res.index["file_key"].map(paths)) == ["left.dcm", "sub/right_rle"]
    q = dict(zip(res.quarantine["file_key"].map(paths), res.quarantine["reason_code"]))
    assert q == {"black.dcm": "blank_image", "tiny.dcm": "too_small", "readme.txt": "not_dicom"}
    assert res.quarantine["stage"].eq("preprocess").all() and res.quarantine["sha256"].str.len().eq(64).all()
    right = res.index.set_index(res.index["file_key"].map(paths)).loc["sub/right_rle"]
    assert right["flipped"] and not right["orientation_disagreement"] and right["laterality_pixels"] == "R"
    for row in res.index.itertuples():
        img = C.read_image(tmp_path / "cache", row.cache_path)
        assert img.shape == (row.height, row.width) == (64, row.width) and row.width % 64 == 0
        assert row.config_hash == CONFIG.config_hash and row.cache_path.startswith(CONFIG.config_hash)


def test_a_rerun_reuses_every_cached_image_and_writes_identical_bytes(dicom_dir, tmp_path):
    first = run(items_from_folder(dicom_dir), tmp_path / "cache", CONFIG)
    png = tmp_path / "cache" / first.index["cache_path"].iloc[0]
    before = png.read_bytes(), png.stat().st_mtime_ns
    second = run(items_from_folder(dicom_dir), tmp_path / "cache", CONFIG)
    assert (first.processed, first.reused) == (2, 0) and (second.processed, second.reused) == (0, 2)
    assert (png.read_bytes(), png.stat().st_mtime_ns) == before
    pd.testing.assert_frame_equal(first.index, second.index)
    pd.testing.assert_frame_equal(first.quarantine, second.quarantine)


def test_a_fresh_cache_reproduces_the_same_pixels_byte_for_byte(dicom_dir, tmp_path):
    a = run(items_from_folder(dicom_dir), tmp_path / "a", CONFIG)
    b = run(items_from_folder(dicom_dir), tmp_path / "b", CONFIG)
    for rel in a.index["cache_path"]:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def test_a_changed_config_never_reads_a_stale_image(dicom_dir, tmp_path):
    run(items_from_folder(dicom_dir), tmp_path / "cache", CONFIG)
    other = run(items_from_folder(dicom_dir), tmp_path / "cache", PreprocessConfig(height=128, mask_height=128))
    assert other.processed == 2 and other.reused == 0 and (other.index["height"] == 128).all()


def test_an_incomplete_entry_without_its_sidecar_is_recomputed(dicom_dir, tmp_path):
    first = run(items_from_folder(dicom_dir), tmp_path / "cache", CONFIG)
    rel = first.index["cache_path"].iloc[0]
    (tmp_path / "cache" / rel).with_suffix(".json").unlink()
    again = run(items_from_folder(dicom_dir), tmp_path / "cache", CONFIG)
    assert (again.processed, again.reused) == (1, 1)


def test_two_worker_processes_give_the_same_index_as_one(dicom_dir, tmp_path, monkeypatch):
    from curation import fanout

    monkeypatch.setattr(fanout, "POOL_MIN_WORK_PER_WORKER_S", 0.0)  # a real pool, though the batch is tiny
    one = run(items_from_folder(dicom_dir), tmp_path / "one", CONFIG, workers=1)
    two = run(items_from_folder(dicom_dir), tmp_path / "two", CONFIG, workers=2)
    pd.testing.assert_frame_equal(one.index, two.index)
    pd.testing.assert_frame_equal(one.quarantine, two.quarantine)


def test_the_cli_writes_the_cache_and_both_parquet_files_with_the_agreed_columns(dicom_dir, tmp_path):
    from pipelines.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["preprocess", "--dicom-dir", str(dicom_dir), "--out", str(out),
                                      "--height", "64", "--no-progress"])
    assert result.exit_code == 0, result.output
    index = pd.read_parquet(out / "index.parquet")
    quarantine = pd.read_parquet(out / "quarantine.parquet")
    required = {"file_key", "cache_path", "height", "width", "crop_x0", "crop_y0", "crop_x1", "crop_y1",
                "flipped", "orientation_disagreement", "image_key", "config_hash", "sha256"}
    assert required <= set(index.columns) and len(index) == 2 and len(quarantine) == 3
    assert all((out / p).is_file() for p in index["cache_path"])
    lookup = pd.read_parquet(out / "private" / "file_keys.parquet")
    assert set(index["file_key"]) | set(quarantine["file_key"]) == set(lookup["file_key"])
    assert not any("left" in str(v) for v in index.astype(str).to_numpy().ravel())  # no path in the table
    assert index["image_key"].str.startswith("sha256:").all()
    assert (index["crop_x1"] > index["crop_x0"]).all() and (index["crop_x1"] <= 160).all()


def test_a_catalogued_file_missing_from_disk_is_quarantined_as_missing(tmp_path):
    ghost = WorkItem(path=str(tmp_path / "gone.dcm"), file_key="F-0", image_key="img-x", sha256="0" * 64)
    res = run([ghost], tmp_path / "cache", CONFIG, batch="b")
    assert res.index.empty
    assert res.quarantine.iloc[0][["batch", "image_key", "reason_code"]].tolist() == ["b", "img-x", "missing_file"]


def test_the_contact_sheet_paints_over_removed_labels_so_burned_in_text_is_unreadable(tmp_path):
    import cv2

    from curation.preprocess.contact_sheet import render

    d = tmp_path / "dicom"
    d.mkdir()
    truth = write_phantom(d / "a.dcm", 320, 256, "L", seed=3, window=(2048, 4096))
    res = run(items_from_folder(d), tmp_path / "cache", CONFIG)
    sheet = cv2.imread(str(render([(str(d / "a.dcm"), res.index.iloc[0])], tmp_path / "cache",
                                  tmp_path / "sheet.png", tile_height=160)))
    scale = 160 / 320  # the before panel is the stored image at 160 rows, drawn first, 4 px below the top
    for x0, y0, x1, y1 in truth.text_boxes:
        cx, cy = int((x0 + x1) / 2 * scale), 4 + int((y0 + y1) / 2 * scale)
        assert tuple(int(v) for v in sheet[cy, cx]) == (0, 0, 200)
