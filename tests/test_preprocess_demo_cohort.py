"""On a tiny demo cohort: every lesion the generator placed stays inside the crop, every burned-in
label is removed, and every breast ends with its chest wall on the left."""

from __future__ import annotations

import pandas as pd
import pytest

from curation.demo_cohort.cohort import generate_cohort
from curation.preprocess.audit import audit
from curation.preprocess.config import PreprocessConfig
from curation.preprocess.runner import WorkItem, run
from curation.pseudonym import file_key

KEY = b"test-key"


def _items(cohort, files) -> list[WorkItem]:
    return [WorkItem(path=str(cohort / f), file_key=file_key("hmi", f.encode(), KEY), rel=f.encode()) for f in files]


def _paths(res) -> dict[str, str]:
    return dict(zip(res.files["file_key"], res.files["rel_path_text"]))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort") / "hmi"
    generate_cohort("hmi", 4, 7, out, height=256)
    return out


def test_lesions_stay_in_the_crop_labels_are_removed_and_chest_walls_end_on_the_left(cohort, tmp_path):
    truth = pd.read_parquet(cohort / "truth.parquet")
    files = truth.loc[truth["level"] == "image", "file"].tolist()
    res = run(_items(cohort, files), tmp_path / "cache", PreprocessConfig(height=128, mask_height=256))
    report = audit(res.index, truth, tmp_path / "cache", res.files)
    assert report.images >= 12 and report.labels >= 12 and report.lesions >= 4, "too few planted boxes to prove anything"
    assert report.failures == []
    assert report.lesions_inside == report.lesions and report.labels_removed == report.labels
    assert report.laterality_right == report.laterality_checked > 0
    planted = truth.loc[(truth["level"] == "image") & truth["planted_defect"].notna(), "file"]
    paths = _paths(res)
    assert set(planted) <= set(res.quarantine["file_key"].map(paths)) | set(res.index["file_key"].map(paths))
    assert len(res.index) + len(res.quarantine) == len(files)


def test_exactly_the_planted_laterality_conflicts_are_flagged_and_their_pixels_win(tmp_path):
    out = tmp_path / "inb"
    generate_cohort("inb", 12, 3, out, height=128)  # this seed plants two laterality conflicts
    truth = pd.read_parquet(out / "truth.parquet")
    images = truth[truth["level"] == "image"].set_index("file")
    res = run(_items(out, images.index), tmp_path / "cache", PreprocessConfig(height=64, mask_height=128, min_size=32))
    paths = _paths(res)
    planted = {f for f, q in images["tag_quirks"].items() if q is not None and "laterality_conflict" in list(q)}
    flagged = set(res.index.loc[res.index["orientation_disagreement"], "file_key"].map(paths))
    assert planted and flagged == planted
    for row in res.index[res.index["orientation_disagreement"]].itertuples():
        assert row.flipped == (images.loc[paths[row.file_key], "chest_wall_side"] == "right")
