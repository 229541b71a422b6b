"""A seeded fuzz batch (300 mutated mammograms + odd names and entries): catalogue and
preprocessing never crash and account for every entry (bench/bench_fuzz.py runs >= 1,000)."""

from __future__ import annotations

from curation.dicom_fuzz import run_fuzz


def test_three_hundred_mutated_files_never_crash_and_every_entry_is_accounted_for(tmp_path):
    fig = run_fuzz(tmp_path, 300, seed=12)
    assert fig.crashes == 0 and fig.unaccounted == 0
    assert fig.entries == 300 + 5  # + DICOMDIR, dangling and looping symlinks, a pipe, an empty file
    assert fig.catalogued + fig.ingest_quarantined == fig.entries
    assert fig.indexed + fig.preprocess_quarantined == fig.catalogued
    assert fig.indexed > 0 and len(fig.reasons) >= 8  # the mutations reach many different rejections
    assert "internal_error" not in fig.reasons
