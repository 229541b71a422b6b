"""The paper's experiments as configuration: label plans, job expansion, table building — with a
fake model executor, so the whole Tables 2–9 pipeline runs in a second without TensorFlow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model import experiments as X

from tests.fake_training_job import FakeExecutor


def manifest_rows(n_breasts: int, cohort: str, seed: int = 0, acr_mix=(1, 2, 3, 4, 5, 6)) -> pd.DataFrame:
    """Two views per breast; labels shared by the breast's views, as in real manifests."""
    rng = np.random.default_rng(seed)
    rows = []
    for b in range(n_breasts):
        mal = int(b % 2)
        acr = int(rng.choice([4, 5, 6])) if mal else int(rng.choice([a for a in acr_mix if a <= 3]))
        dens = "ABCD"[(b // 2) % 4]
        for view in ("CC", "MLO"):
            rows.append({"image_key": f"{cohort}-{b:03d}-{view}", "breast_key": f"{cohort}acc{b:03d}:L",
                         "patient_pid": f"{cohort}p{b // 2}", "cache_path": f"x/{cohort}{b}{view}.png",
                         "height": 64, "width": 64,
                         "breastbin": mal, "breastbin_u": 0.0, "breastbin_weight": 1.0, "breastbin_source": "pathology",
                         "acr": acr, "acr_u": 0.2, "acr_weight": 0.8, "acr_source": "report",
                         "density": dens, "density_u": 0.0, "density_weight": 1.0, "density_source": "report",
                         "view": view, "view_u": 0.0, "view_weight": 1.0, "view_source": "dicom"})
    return pd.DataFrame(rows)


# --- label plans -------------------------------------------------------------------------------
def test_removing_half_the_breastbin_labels_removes_whole_breasts_and_keeps_other_tasks():
    rows = manifest_rows(40, "hmi")
    out = X.apply_label_plan(rows, X.LabelPlan(keep_fraction=0.5, seed=3))
    per_breast = out.groupby("breast_key")["breastbin"].apply(lambda v: v.isna().sum())
    assert set(per_breast) == {0, 2}                 # never one view of a breast
    assert (per_breast == 2).sum() == 20
    gone = out["breastbin"].isna()
    assert (out.loc[gone, "breastbin_weight"] == 0).all() and out["acr"].notna().all()
    assert out.equals(X.apply_label_plan(rows, X.LabelPlan(keep_fraction=0.5, seed=3)))
    assert not out.equals(X.apply_label_plan(rows, X.LabelPlan(keep_fraction=0.5, seed=4)))


def test_removing_all_labels_of_a_fraction_means_fewer_breasts():
    out = X.apply_label_plan(manifest_rows(40, "hmi"), X.LabelPlan(sample_fraction=0.25))
    assert out["breast_key"].nunique() == 10 and len(out) == 20


def test_noisy_labels_replace_excluded_ones_with_random_labels():
    rows = manifest_rows(40, "hmi")
    out = X.apply_label_plan(rows, X.LabelPlan(noise_exclude_fraction=0.5, noise_fraction=1.0, seed=1))
    noisy = out["breastbin_source"] == "experiment_noise"
    assert out.loc[noisy, "breast_key"].nunique() == 20 and out["breastbin"].notna().all()
    half = X.apply_label_plan(rows, X.LabelPlan(noise_exclude_fraction=0.5, noise_fraction=0.5, seed=1))
    assert half["breastbin"].isna().sum() == 20 and (half["breastbin_source"] == "experiment_noise").sum() == 20


def test_acr_derived_malignancy_follows_the_paper_and_keeps_better_labels():
    rows = pd.DataFrame({"image_key": list("abcdefgh"), "breast_key": list("abcdefgh"),
                         "acr": [1, 2, 3, 4, 5, 6, 4, 2],
                         "breastbin": [None, None, None, "1", None, None, 0, 1],
                         "breastbin_u": [1.0, 1.0, 1.0, 0.5, 1.0, 1.0, 0.0, 0.05],
                         "breastbin_weight": [0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 1.0, 0.95],
                         "breastbin_source": [None, None, None, "derived", None, None, "biopsy", "follow_up"]})
    out = X.derive_malignancy_from_acr(rows, u_const=0.75)
    # biopsy-benign ACR 4 stays benign, follow-up keeps its label; label_mining's derivation is redone;
    # ACR 6 is a stated malignancy (label_mining's confirmed label), never a derived one
    assert out["breastbin"].tolist() == [0, 0, None, 1, 1, None, 0, 1]
    assert out["breastbin_weight"].tolist() == [0.25, 0.25, 0.0, 0.25, 0.25, 0.0, 1.0, 0.95]
    assert out["breastbin_source"].tolist()[6:] == ["biopsy", "follow_up"]


def test_uncertainty_policies():
    rows = manifest_rows(2, "hmi")
    assert X.apply_label_plan(rows, X.LabelPlan())["acr_weight"].tolist() == [0.8] * 4
    assert X.apply_label_plan(rows, X.LabelPlan(uncertainty_policy="certain"))["acr_weight"].tolist() == [1.0] * 4
    for name in ("ignore", "exclude"):  # "exclude" is the former name of "ignore"
        ign = X.apply_label_plan(rows, X.LabelPlan(uncertainty_policy=name))
        assert ign["acr"].isna().all() and (ign["acr_weight"] == 0).all() and ign["density"].notna().all()
    kept = X.apply_label_plan(rows, X.LabelPlan(uncertainty_policy="ignore", uncertain_above=0.2))
    assert kept["acr"].notna().all() and kept["acr_weight"].tolist() == [0.8] * 4


def test_ignore_means_the_same_at_training_time_as_in_label_mining():
    """One meaning of "ignore": label_mining.handling drops a record with u > uncertain_above; the
    training-time policy drops exactly the manifest labels the same predicate marks."""
    from label_mining.handling import is_ignored

    rows = manifest_rows(6, "hmi")
    rows["acr_u"] = [0.0, 0.0, 0.1, 0.1, 0.3, 0.3, 0.5, 0.5, 0.0, 0.0, 0.9, 0.9]
    for above in (0.0, 0.2, 0.6):
        out = X.apply_label_plan(rows, X.LabelPlan(uncertainty_policy="ignore", uncertain_above=above))
        dropped = out["acr"].isna().to_numpy()
        assert dropped.tolist() == is_ignored(rows["acr"].notna(), rows["acr_u"], above).tolist()
        assert (out.loc[~dropped, "acr_weight"] == 1 - rows.loc[~dropped, "acr_u"]).all()


def test_the_one_acr_mapping_is_label_minings():
    from label_mining.malignancy import ACR_TO_MALIGNANCY, DERIVED_ACR

    rows = pd.DataFrame({"image_key": list("abcdefg"), "breast_key": list("abcdefg"), "acr": [0, 1, 2, 3, 4, 5, 6],
                         "breastbin": [None] * 7, "breastbin_u": [1.0] * 7, "breastbin_weight": [0.0] * 7,
                         "breastbin_source": [None] * 7})
    out = X.derive_malignancy_from_acr(rows, u_const=0.0)
    expected = [ACR_TO_MALIGNANCY[a] if a in DERIVED_ACR else None for a in range(7)]
    assert out["breastbin"].tolist() == expected == [None, 0, 0, None, 1, 1, None]


def test_confirmed_only_drops_label_minings_derived_malignancy_before_subsampling():
    rows = manifest_rows(40, "hmi")
    rows.loc[rows.index % 4 < 2, "breastbin_source"] = "derived"   # every other breast
    out = X.apply_label_plan(rows, X.LabelPlan(confirmed_only=True, keep_fraction=0.25, seed=2))
    kept = out[out["breastbin"].notna()]
    assert (kept["breastbin_source"] == "pathology").all() and kept["breast_key"].nunique() == 5
    derived = X.apply_label_plan(rows, X.LabelPlan(confirmed_only=True, keep_fraction=0.25, acr_derived_u=0.5, seed=2))
    assert set(derived["breastbin_source"].dropna()) >= {"acr_derived", "pathology"}


def test_bad_plans_fail_naming_the_field():
    with pytest.raises(ValueError, match="keep_fraction"):
        X.LabelPlan(keep_fraction=0)
    with pytest.raises(ValueError, match="keep_tasks"):
        X.LabelPlan(keep_tasks=("malignancy",))
    with pytest.raises(ValueError, match="noise_exclude_fraction"):
        X.LabelPlan(noise_fraction=0.5)
    with pytest.raises(ValueError, match="table '10'"):
        X.resolve_tables(["10"])


# --- jobs ----------------------------------------------------------------------------------------
def test_tables_share_the_reference_model_and_baselines_share_their_first_model():
    b = X.budget("small")
    t23 = {r.name: r for r in X.EXPERIMENTS["2_3"].runs}
    t89 = {r.name: r for r in X.EXPERIMENTS["8_9"].runs}
    ex = lambda spec, by: X.expand(spec, b, 0, by, {})
    ref = ex(t23[X.REFERENCE], t23).members[0]
    assert ex(t89["Reference (MTL)"], t89).members[0].key == ref.key
    ft = ex(t89["FT u0.50"], t89)
    assert ft.members[0].init.key == ref.key and ft.members[0].train_on == ("vtb", "finetune")
    assert ft.members[0].train_config["class_weights"]["acr"][3:5] == [20.0, 20.0]
    base = ex(t23["Baseline"], t23).members[0]
    ens, mc = ex(t23["Ensembles"], t23), ex(t23["MC-drop"], t23)
    assert ens.members[0].key == base.key and len({m.key for m in ens.members}) == b.ensemble_size
    assert mc.members[0].key == base.key and mc.mc_passes == 10 and mc.key != ex(t23["Baseline"], t23).key
    assert ex(t23[X.REFERENCE], t23).latent


def test_resolve_tables_accepts_paper_numbers():
    assert X.resolve_tables(["2", "3", "9", "4"]) == ["2_3", "8_9", "4"]


# --- the whole experiment pipeline with a fake model ---------------------------------------------
@pytest.fixture()
def manifests():
    return {("hmi", "train"): manifest_rows(30, "hmi", 1), ("hmi", "test"): manifest_rows(24, "hmt", 2),
            ("inb", "test"): manifest_rows(20, "inb", 3), ("vtb", "finetune"): manifest_rows(30, "vtb", 4)}


def test_all_tables_are_written_in_the_papers_layout_and_a_rerun_trains_nothing(tmp_path, manifests):
    ex = FakeExecutor()
    b = X.budget("small").model_copy(update={"n_bootstrap": 50})
    written = X.run_experiments(tmp_path / "models", tmp_path / "tables", manifests, ex, ["2", "4", "5", "6", "8"], b,
                                log=lambda m: None)
    names = sorted(p.name for ps in written.values() for p in ps if not p.name.startswith("seed_results"))
    assert names == sorted(f"table_{n}.{ext}" for n in "23456789" for ext in ("md", "parquet"))
    # ref MTL, 2 baseline seeds, 5 task ablations incl. mono-task, 6 label plans, MixMatch x2, 2 NL, 3 mono, 5 FT
    assert len(ex.trained) == len(set(ex.trained)) == 1 + 2 + 5 + 6 + 2 + 2 + 3 + 5
    t2 = pd.read_parquet(tmp_path / "tables" / "table_2.parquet")
    assert list(dict.fromkeys(t2["row"])) == ["Overall", "Density A", "Density B", "Density C", "Density D",
                                              "View CC", "View MLO"]
    assert list(dict.fromkeys(t2["column"])) == ["Baseline", "Ensembles", "MC-drop", X.REFERENCE]
    overall = t2[(t2["row"] == "Overall") & (t2["column"] == "Baseline")].iloc[0]
    assert 0 <= overall["p_value"] <= 1 and "(" in overall["cell"]
    assert t2[t2["row"] == "Density D"]["value"].notna().all()
    t9 = (tmp_path / "tables" / "table_9.md").read_text()
    assert "FT u0.90" in t9 and "inb" in t9 and "ACR weighted accuracy" in t9
    t4 = pd.read_parquet(tmp_path / "tables" / "table_4.parquet")
    assert set(t4["column"]) >= {"breastbin", "rec", "hmi test", "inb (external)"}
    assert t4[(t4["row"] == "breastbin + rec") & (t4["column"] == "rec")]["cell"].item() == "+"
    again = FakeExecutor()
    X.run_experiments(tmp_path / "models", tmp_path / "tables2", manifests, again, ["2", "4", "5", "6", "8"], b,
                      log=lambda m: None)
    assert again.trained == []
    for n in "23456789":  # same inputs -> byte-identical tables
        assert (tmp_path / "tables" / f"table_{n}.md").read_bytes() == (tmp_path / "tables2" / f"table_{n}.md").read_bytes()


def test_a_missing_training_manifest_names_what_to_materialise(tmp_path, manifests):
    del manifests[("vtb", "finetune")]
    with pytest.raises(FileNotFoundError, match="split_manifests"):
        X.run_experiments(tmp_path / "m", tmp_path / "t", manifests, FakeExecutor(), ["8"], X.budget("small"),
                          log=lambda m: None)
