"""`mammo-mtl experiments --jobs N`: trainings side by side in processes, with the fake executor
(so nothing here needs TensorFlow)."""

from __future__ import annotations

import pandas as pd
import pytest

from model import experiments as X
from model.experiments import parallel as P

from tests.fake_training_job import FailingExecutor, FakeExecutor
from tests.test_experiments_bench import manifests  # noqa: F401  (fixture)

TABLES = ["bench_8_9", "bench_4"]   # fine-tunings start from the MTL model: a dependency to respect


def small_budget():
    return X.budget("bench").model_copy(update={"n_bootstrap": 0, "seeds": 2})


def test_every_model_a_table_needs_is_planned_once_and_after_the_model_it_starts_from(manifests):
    order = P.training_order(P.planned_evals(TABLES, small_budget(), manifests))
    keys = [j.key for j in order]
    assert len(keys) == len(set(keys))
    finetunes = [j for j in order if j.init is not None]
    assert finetunes, "bench_8_9 fine-tunes from the MTL model"
    for j in finetunes:
        assert keys.index(j.init.key) < keys.index(j.key)


def test_models_trained_side_by_side_give_the_serial_run_its_tables_without_training_again(tmp_path, manifests):
    b = small_budget()
    X.run_experiments(tmp_path / "serial", tmp_path / "serial_tables", manifests, FakeExecutor(), TABLES, b,
                      log=lambda m: None)
    order = P.training_order(P.planned_evals(TABLES, b, manifests))
    trained = P.train_in_parallel(order, workers=2, models_root=tmp_path / "par", manifests=manifests,
                                  executor=FakeExecutor(), log=lambda m: None)
    assert sorted(trained) == sorted(j.key for j in order)
    walk = FakeExecutor()
    X.run_experiments(tmp_path / "par", tmp_path / "par_tables", manifests, walk, TABLES, b, log=lambda m: None)
    assert walk.trained == []                      # the walk found every model in the cache
    for name in ("table_B4.parquet", "table_B8.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "serial_tables" / name),
                                      pd.read_parquet(tmp_path / "par_tables" / name))
    # and a second parallel pass has nothing left to train
    assert P.train_in_parallel(order, workers=2, models_root=tmp_path / "par", manifests=manifests,
                               executor=FakeExecutor(), log=lambda m: None) == []


def test_a_failed_training_is_named_and_the_models_that_start_from_it_are_not_trained(tmp_path, manifests):
    b = small_budget()
    order = P.training_order(P.planned_evals(["bench_8_9"], b, manifests))
    with pytest.raises(RuntimeError) as err:
        P.train_in_parallel(order, workers=2, models_root=tmp_path, manifests=manifests,
                            executor=FailingExecutor("mtl"), log=lambda m: None)
    message = str(err.value)
    for j in order:
        assert j.key in message                    # every MTL model failed; every fine-tuning depends on one
        assert not P.is_trained(tmp_path, j)
    assert "no mtl today" in message and "a model it starts from failed" in message


def test_each_training_gets_its_share_of_the_cores_and_at_least_one_thread():
    assert P.threads_per_training(2, cores=8) == 4
    assert P.threads_per_training(3, cores=2) == 1
    with pytest.raises(ValueError, match="jobs=0"):
        P.threads_per_training(0, cores=2)
