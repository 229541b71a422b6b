"""Training width never cuts breast tissue silently, and the best epoch is chosen on
validation data — or the run says loudly that it was not."""

from __future__ import annotations

import json
import warnings

import pytest

from model.config import TrainConfig
from model.data import count_cut, fit_width, tissue_widths
from model.synthetic import write_synthetic_cache
from model.train import NO_VALIDATION_WARNING, resolve_width, train


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """Images stored 192 px wide whose tissue reaches ~154 px (half-ellipse of 0.8 W)."""
    root = tmp_path_factory.mktemp("wide")
    return root, write_synthetic_cache(root, 4, height=128, width=64, image_width=192, seed=1)


def test_tissue_width_is_measured_from_the_pixels(wide):
    root, rows = wide
    widths = tissue_widths(rows, root, height=128)
    assert ((widths > 128) & (widths <= 192)).all()


def test_content_width_column_is_used_and_scaled_to_the_training_height(wide):
    root, rows = wide
    rows = rows.assign(height=256, content_width=[100, 300, 64, 0])
    assert tissue_widths(rows, root, height=128).tolist() == [50, 150, 32, 0]


def test_fit_width_is_the_smallest_multiple_of_64_that_holds_all_tissue():
    assert fit_width([1, 64]) == 64
    assert fit_width([65, 10]) == 128
    assert count_cut([65, 10, 200], 128) == 1


def test_a_width_that_cuts_tissue_warns_with_the_count(wide):
    root, rows = wide
    cfg = TrainConfig(tasks=("view",), height=128, width=64)
    with pytest.warns(UserWarning, match=r"cuts breast tissue in 4 of 4 training"):
        resolved, info = resolve_width(cfg, rows, None, root)
    assert resolved.width == 64 and info["tissue_cut_train"] == 4


def test_auto_width_cuts_nothing_and_says_nothing(wide):
    root, rows = wide
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolved, info = resolve_width(TrainConfig(tasks=("view",), height=128, width="auto"), rows, rows, root)
    assert resolved.width == 192 and info["tissue_cut_train"] == info["tissue_cut_val"] == 0


def test_auto_width_is_refused_where_a_network_must_be_built():
    with pytest.raises(ValueError, match="with_width"):
        TrainConfig(width="auto").model_cfg()


def test_multi_worker_mirrored_is_accepted_as_the_readme_names_it():
    assert TrainConfig(strategy="multi_worker_mirrored").strategy == "multi_worker_mirrored"


def test_training_without_validation_warns_and_records_it(tmp_path):
    rows = write_synthetic_cache(tmp_path / "c", 4, height=128, width=64, image_width=128)
    cfg = TrainConfig(tasks=("view",), height=128, width=64, epochs=1, batch_size=4, run_eagerly=True,
                      verbose=0)
    with pytest.warns(UserWarning) as seen:
        result = train(cfg, rows, None, tmp_path / "c", tmp_path / "run")
    messages = [str(w.message) for w in seen]
    assert NO_VALIDATION_WARNING in messages
    assert any("cuts breast tissue in 4 of 4" in m for m in messages)
    recorded = json.loads((tmp_path / "run" / "result.json").read_text())
    assert recorded["selected_on_validation"] is False and recorded["selection_warning"] == NO_VALIDATION_WARNING
    assert recorded["tissue_cut_train"] == 4 and result.tissue_cut == 4
    assert result.selection_metric == "loss" and not result.selected_on_validation
