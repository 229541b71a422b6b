"""The splitter: patient-grouped, stratified, seed-deterministic, and fails fast on bad ratios."""

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curation.split import SplitConfig, assign_groups, group_strata, leaks, split_images, stratum_table
from curation.tasks import TASKS


def cohort(n_patients=60, images_per_patient=4, malignant_every=4):
    rows = []
    for p in range(n_patients):
        for i in range(images_per_patient):
            lat = "LR"[i % 2]
            rows.append({"patient_pid": f"P-{p:016x}", "breast_key": f"A-{p:016x}:{lat}",
                         "breastbin": float(p % malignant_every == 0 and lat == "L"),
                         "density": "ABCD"[p % 4] if p % 7 else None})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("kwargs, field", [
    ({"train": 0.9, "test": 0.2}, "sum to 1"),
    ({"train": -0.1, "test": 1.1}, "train=-0.1"),
    ({"train": 1.0, "test": 0.0}, "test=0.0"),
    ({"train": 0.8, "test": 0.2, "group_by": "study"}, "group_by='study'"),
    ({"train": 0.8, "test": 0.2, "seed": 1.5}, "seed=1.5"),
])
def test_bad_split_config_is_rejected_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field.replace("(", r"\(")):
        SplitConfig(**kwargs)


def test_all_images_of_a_patient_share_one_split():
    images = cohort()
    splits = split_images(images, SplitConfig(seed=3))
    per_patient = images.assign(split=splits).groupby("patient_pid")["split"].nunique()
    assert (per_patient == 1).all()
    assert leaks(images.assign(split=splits, cohort="hmi")).empty


def test_default_split_is_80_20_of_patients():
    images = cohort(n_patients=50)
    splits = split_images(images, SplitConfig())
    patients = images.assign(split=splits).drop_duplicates("patient_pid")["split"].value_counts()
    assert patients.to_dict() == {"train": 40, "test": 10}


def test_malignant_patients_are_spread_over_splits_like_the_cohort():
    images = cohort(n_patients=80, malignant_every=4)  # 20 malignant patients
    splits = split_images(images, SplitConfig(seed=11))
    patients = images.assign(split=splits).groupby("patient_pid").agg(split=("split", "first"),
                                                                       malignant=("breastbin", "max"))
    test_malignant = patients.loc[patients["split"] == "test", "malignant"].sum()
    assert abs(test_malignant - 0.2 * 20) <= 1


def test_density_strata_are_used_where_large_enough_and_merged_where_not():
    images = cohort(n_patients=80)
    images.loc[images["patient_pid"] == f"P-{3:016x}", "density"] = "D"
    groups = group_strata(images, SplitConfig())
    assert any(s.endswith("|d=A") for s in groups["stratum"])
    tiny = group_strata(images.head(8), SplitConfig())  # two patients: every density stratum too small
    assert set(tiny["stratum"]) <= {"m=0|d=*", "m=1|d=*"}


def test_split_depends_on_seed_but_not_on_row_order():
    images = cohort()
    a = split_images(images, SplitConfig(seed=5))
    shuffled = images.sample(frac=1.0, random_state=0)
    b = split_images(shuffled, SplitConfig(seed=5)).reindex(images.index)
    c = split_images(images, SplitConfig(seed=6))
    assert a.equals(b)
    assert not a.equals(c)


def test_optional_validation_split_gets_its_share():
    images = cohort(n_patients=100)
    splits = split_images(images, SplitConfig(train=0.7, val=0.1, test=0.2))
    patients = images.assign(split=splits).drop_duplicates("patient_pid")["split"].value_counts()
    assert patients.to_dict() == {"train": 70, "test": 20, "val": 10}


def test_breastwise_grouping_keeps_each_breast_together_but_may_split_a_patient():
    images = cohort(n_patients=60)
    config = SplitConfig(group_by="breast", seed=2)
    splits = split_images(images, config)
    placed = images.assign(split=splits, cohort="hmi")
    assert leaks(placed, "breast_key").empty
    assert not leaks(placed, "patient_pid").empty  # the paper's protocol leaks patients; the check warns


def test_leaks_reports_a_patient_found_in_two_splits():
    rows = pd.DataFrame({"patient_pid": ["P-1", "P-1", "P-2"], "cohort": "hmi", "split": ["train", "test", "test"]})
    found = leaks(rows)
    assert found.to_dict("records") == [{"patient_pid": "P-1", "found_in": "hmi/test, hmi/train"}]


def test_stratum_table_counts_every_group_once():
    images = cohort(n_patients=30)
    config = SplitConfig(seed=1)
    table = stratum_table(images, split_images(images, config), config)
    assert table.to_numpy().sum() == 30


@st.composite
def random_cohorts(draw):
    n = draw(st.integers(1, 60))
    rows = []
    for p in range(n):
        malignant = draw(st.sampled_from([0.0, 1.0, None]))
        density = draw(st.sampled_from([*TASKS["density"], None]))
        for i in range(draw(st.integers(1, 6))):
            rows.append({"patient_pid": f"P-{p:016x}", "breast_key": f"A-{p:016x}:{'LR'[i % 2]}",
                         "breastbin": malignant, "density": density})
    ratios = draw(st.sampled_from([(0.8, 0.0, 0.2), (0.7, 0.1, 0.2), (0.5, 0.25, 0.25), (0.6, 0.0, 0.4)]))
    return pd.DataFrame(rows), ratios, draw(st.integers(0, 2**31))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_cohorts())
def test_any_cohort_is_split_completely_without_leaks_and_in_the_requested_ratios(case):
    images, (train, val, test), seed = case
    config = SplitConfig(train=train, val=val, test=test, seed=seed)
    splits = split_images(images, config)
    assert splits.notna().all()
    assert set(splits) <= set(config.ratios)
    assert (images.assign(split=splits).groupby("patient_pid")["split"].nunique() == 1).all()
    groups = group_strata(images, config)
    by_group = assign_groups(groups, config)
    n = len(groups)
    for name, ratio in config.ratios.items():
        assert abs((by_group == name).sum() - ratio * n) < 1.0 + 1e-9  # whole cohort: within one group
        for stratum, members in groups.groupby("stratum"):
            got = by_group.reindex(members["group"]).eq(name).sum()
            assert abs(got - ratio * len(members)) <= 2.0  # each stratum: within two groups
    assert split_images(images, config).equals(splits)  # deterministic
