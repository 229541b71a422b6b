"""Fault review (issue 12, items 6-13): every entry under dicom/ is catalogued or quarantined with a
reason, in bounded memory, whatever its name, bytes or header; no table carries a path."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.uid import RLELossless

from curation.catalog import build_catalog, catalog_file
from curation.decode import DecodeError, read_dicom
from curation.preprocess.config import PreprocessConfig
from curation.preprocess.runner import items_from_folder, run
from tests.dicom_factory import make_mg

KEY = b"test-key"
CONFIG = PreprocessConfig(height=64, mask_height=128, min_size=32)


def _reasons(result) -> dict[str, str]:
    paths = dict(zip(result.files["file_key"], result.files["rel_path_text"]))
    return dict(zip(result.quarantine["file_key"].map(paths), result.quarantine["reason_code"]))


def _edit(path: Path, **tags) -> Path:
    ds = pydicom.dcmread(path)
    for k, v in tags.items():
        if v is None:
            del ds[k]
        else:
            setattr(ds, k, v)
    ds.save_as(path)
    return path


def _poke(path: Path, keyword: str, placeholder: str, junk: bytes) -> Path:
    """Write ``keyword`` = ``placeholder`` properly, then overwrite its value bytes with ``junk`` (same
    length): pydicom refuses to write an invalid value, a real export does not."""
    _edit(path, **{keyword: placeholder})
    tag = pydicom.datadict.tag_for_keyword(keyword)
    head = (tag >> 16).to_bytes(2, "little") + (tag & 0xFFFF).to_bytes(2, "little")
    data = bytearray(path.read_bytes())
    at = data.index(head, 132) + 8  # explicit VR little endian: tag (4) + VR (2) + length (2)
    assert data[at:at + len(junk)] == placeholder.encode().ljust(len(junk))
    data[at:at + len(junk)] = junk
    path.write_bytes(bytes(data))
    return path


def test_a_file_name_that_is_not_utf8_is_catalogued_and_its_name_kept_byte_for_byte(tmp_path):
    d = tmp_path / "b" / "dicom"
    good = make_mg(d / "ok.dcm", sop_uid="1.2.1")
    raw = os.path.join(os.fsencode(str(d)), b"caf\xe9_\xff.dcm")
    os.rename(good, raw)
    result = build_catalog(tmp_path / "b", "b", KEY)
    assert len(result.catalog) == 1 and result.accounted
    assert list(result.files["rel_path"]) == [b"dicom/caf\xe9_\xff.dcm"]
    res = run(items_from_folder(d, KEY), tmp_path / "cache", CONFIG)
    assert len(res.index) + len(res.quarantine) == 1  # preprocessing does not crash on it either


def test_a_junk_header_value_or_a_corrupt_element_quarantines_that_file_and_the_batch_goes_on(tmp_path):
    d = tmp_path / "b" / "dicom"
    make_mg(d / "good.dcm", sop_uid="1.2.1")
    _poke(make_mg(d / "frames.dcm", sop_uid="1.2.2"), "NumberOfFrames", "1", b"a ")
    _edit(make_mg(d / "norows.dcm", sop_uid="1.2.3"), Rows=None)
    bad_vr = make_mg(d / "vr.dcm", sop_uid="1.2.4")
    data = bytearray(bad_vr.read_bytes())
    at = data.find(b"LO", 300)  # one corrupted VR byte in the dataset (a lazily parsed element)
    data[at:at + 2] = b"\x00\x07"
    bad_vr.write_bytes(bytes(data))
    result = build_catalog(tmp_path / "b", "b", KEY)
    reasons = _reasons(result)
    assert len(result.catalog) == 1 and result.accounted
    assert reasons["dicom/frames.dcm"] == "bad_header_value" and reasons["dicom/norows.dcm"] == "missing_image_size"
    assert reasons["dicom/vr.dcm"] in {"unexpected_error", "not_dicom", "bad_header_value", "truncated"}
    if reasons["dicom/vr.dcm"] == "unexpected_error":  # the exception class is named
        msg = result.quarantine.set_index("reason_code").loc["unexpected_error", "message"]
        assert "Error" in msg


def test_a_decompression_bomb_is_quarantined_as_too_large_before_any_decoding(tmp_path):
    d = tmp_path / "b" / "dicom"
    path = make_mg(d / "bomb.dcm", sop_uid="1.2.9", rows=64, cols=64)
    ds = pydicom.dcmread(path)
    ds.compress(RLELossless)
    ds.Rows = ds.Columns = 65535  # a small RLE stream declaring 4.3 Gpixel
    ds.save_as(path)
    started = time.process_time()
    result = build_catalog(tmp_path / "b", "b", KEY, max_pixels=50_000_000)
    assert _reasons(result) == {"dicom/bomb.dcm": "too_large"}
    with pytest.raises(DecodeError) as err:
        read_dicom(path, max_pixels=50_000_000)
    assert err.value.reason_code == "too_large" and time.process_time() - started < 5


def test_every_entry_under_dicom_is_catalogued_or_quarantined_and_preprocessing_walks_the_same_set(tmp_path,
                                                                                                     monkeypatch):
    d = tmp_path / "b" / "dicom"
    make_mg(d / "a.dcm", sop_uid="1.2.1")
    make_mg(d / ".hidden.dcm", sop_uid="1.2.2")            # a dotfile is still an image
    make_mg(d / "DICOMDIR", sop_uid="1.2.3")
    os.symlink(d / "missing.dcm", d / "dangling.dcm")
    os.symlink(d / "loop.dcm", d / "loop.dcm")
    os.symlink(d, d / "dirlink")
    os.mkfifo(d / "pipe.dcm")
    (d / "locked").mkdir()
    make_mg(d / "locked" / "x.dcm", sop_uid="1.2.4")
    real_scandir = os.scandir

    def scandir(path):  # root ignores chmod 000, so the unreadable folder is simulated
        if os.fsencode(path).endswith(b"locked"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = build_catalog(tmp_path / "b", "b", KEY)
    assert result.files_found == 8 and result.accounted and len(result.catalog) == 2
    assert _reasons(result) == {"dicom/DICOMDIR": "dicomdir", "dicom/dangling.dcm": "dangling_symlink",
                                "dicom/loop.dcm": "symlink_loop", "dicom/dirlink": "symlinked_folder",
                                "dicom/pipe.dcm": "not_regular_file", "dicom/locked": "unreadable_folder"}
    items = items_from_folder(d, KEY, batch="b")
    assert {it.rel for it in items} == {os.path.relpath(r, b"dicom") for r in result.files["rel_path"]}


def test_hashing_a_large_non_dicom_file_uses_bounded_memory(tmp_path):
    big = tmp_path / "b" / "dicom" / "big.bin"
    big.parent.mkdir(parents=True)
    with open(big, "wb") as fh:
        fh.write(os.urandom(1 << 20) * 48)  # 48 MiB
    tracemalloc.start()
    out = catalog_file(big, tmp_path / "b", "b", KEY)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert out["reject"]["reason_code"] == "not_dicom" and out["reject"]["sha256"]
    assert peak < 12 * (1 << 20), f"peak {peak / 2**20:.0f} MiB for a 48 MiB file"


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_a_cut_file_is_reported_as_truncated_with_re_export_advice(tmp_path, keep):
    src = make_mg(tmp_path / "src.dcm", sop_uid="1.2.1", rows=32, cols=32)
    data = src.read_bytes()
    cut = tmp_path / "b" / "dicom" / "cut.dcm"
    cut.parent.mkdir(parents=True)
    cut.write_bytes(data[: int(len(data) * keep)])
    row = catalog_file(cut, tmp_path / "b", "b", KEY)["reject"]
    assert row["reason_code"] in {"truncated", "truncated_pixel_data"}
    assert "re-export" in row["message"]


def test_a_window_width_that_is_not_a_number_is_bad_voi_not_an_internal_error(tmp_path):
    path = _edit(make_mg(tmp_path / "w.dcm", sop_uid="1.2.1"), WindowCenter="100")
    _poke(path, "WindowWidth", "4000", b"abcd")
    res = run(items_from_folder(tmp_path, KEY), tmp_path / "cache", CONFIG)
    assert list(res.quarantine["reason_code"]) == ["bad_voi"] and path.exists()


def test_catalogue_and_preprocessing_give_identical_output_on_another_executor(tmp_path):
    d = tmp_path / "b" / "dicom"
    for i in range(6):
        make_mg(d / f"s{i}/img.dcm", sop_uid=f"1.2.{i}", laterality="LR"[i % 2])
    (d / "junk.dcm").write_bytes(b"junk")
    serial = build_catalog(tmp_path / "b", "b", KEY)
    with ThreadPoolExecutor(2) as pool:
        other = build_catalog(tmp_path / "b", "b", KEY, executor=pool)
        pd.testing.assert_frame_equal(serial.catalog, other.catalog)
        pd.testing.assert_frame_equal(serial.quarantine, other.quarantine)
        one = run(items_from_folder(d, KEY), tmp_path / "c1", CONFIG)
        two = run(items_from_folder(d, KEY), tmp_path / "c2", CONFIG, executor=pool)
    pd.testing.assert_frame_equal(one.index, two.index)
    pd.testing.assert_frame_equal(one.quarantine, two.quarantine)


def test_a_failing_worker_quarantines_its_file_instead_of_ending_the_batch(tmp_path):
    class Flaky(ThreadPoolExecutor):
        def submit(self, fn, *args):
            if "s1" in str(args[0][0].rel if hasattr(args[0][0], "rel") else args[0][0].path):
                raise MemoryError("worker killed")
            return super().submit(fn, *args)

    d = tmp_path / "b" / "dicom"
    for i in range(3):
        make_mg(d / f"s{i}/img.dcm", sop_uid=f"1.2.{i}")
    with Flaky(1) as pool:
        result = build_catalog(tmp_path / "b", "b", KEY, executor=pool)
    assert result.accounted and _reasons(result) == {"dicom/s1/img.dcm": "unexpected_error"}
    assert "MemoryError" in result.quarantine["message"].iloc[0]


_KILLED_PARENT = """
import os, sys, time
from curation.fanout import local_pool
pool = local_pool(2)
print(" ".join(str(p) for p in pool.submit(os.getpid).result() and [f.result() for f in
      [pool.submit(time.sleep, 0) for _ in range(4)]] and list(pool._processes)), flush=True)
time.sleep(60)
"""


def test_worker_processes_exit_when_their_parent_is_killed(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", _KILLED_PARENT], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    pids = [int(p) for p in parent.stdout.readline().split()]
    assert pids
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids), "workers outlived their killed parent"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_the_12_bit_jpeg_extended_test_file_decodes_through_the_gdcm_fallback():
    from pydicom.data import get_testdata_file

    path = get_testdata_file("JPEG-lossy.dcm")  # 1.2.840.10008.1.2.4.51, 12-bit: pillow/pylibjpeg refuse it
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.51" and ds.BitsStored == 12
    img = read_dicom(path)
    assert img.stored.shape == (1024, 256) and img.stored.dtype == np.uint16 and 0 < img.stored.max() < 4096


def test_a_stream_the_decoder_warns_about_is_quarantined_with_the_warning_not_cached(tmp_path):
    path = make_mg(tmp_path / "rle.dcm", sop_uid="1.2.1", rows=64, cols=64)
    ds = pydicom.dcmread(path)
    ds.compress(RLELossless)
    ds.Rows = 60  # the segments now decode to more bytes than the header expects
    ds.save_as(path)
    with pytest.raises(DecodeError) as err:
        read_dicom(path)
    assert err.value.reason_code == "decoder_warning" and "RLE" in err.value.message
