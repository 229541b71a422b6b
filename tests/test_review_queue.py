"""Which labels reach an annotator, and in which order (review_app.queue, pure)."""

import io
import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from curation.tasks import ConflictKind
from review_app.queue import (KIND_REASON, QUEUE_COLUMNS, QueueConfig, build_queue, conflict_reason,
                              legacy_conflict_reason, to_arrow)


def breast(key, task, label, u, *, source="report", rule_id="report.rule", conflict=False, evidence=None):
    return {"accession_key": key.split(":")[0], "breast_key": key, "task": task, "label": label, "u": u,
            "source": source, "rule_id": rule_id, "evidence": evidence, "conflict": conflict, "batch": "hmi"}


def image(image_key, breast_key, task, label, u, *, source="dicom_tag", conflict=False):
    return {"image_key": image_key, "breast_key": breast_key, "task": task, "label": label, "u": u,
            "source": source, "rule_id": "tag.view", "evidence": None, "conflict": conflict, "batch": "hmi"}


def frames(breast_rows, image_rows=()):
    cols_b = list(breast("A-1:L", "acr", "1", 0.0))
    cols_i = list(image("I-1", "A-1:L", "view", "CC", 0.0))
    return pd.DataFrame(list(breast_rows), columns=cols_b), pd.DataFrame(list(image_rows), columns=cols_i)


def keys(queue):
    return list(queue["item_key"])


def test_pathology_conflict_comes_first_then_other_conflicts_then_uncertainty_by_u():
    b, i = frames([
        breast("A-1:L", "density", "B", 0.6),
        breast("A-2:R", "acr", "3", 0.9),
        breast("A-3:L", "acr", "4", 0.2, source="report", rule_id="birads.explicit+readers_disagree", conflict=True),
        breast("A-4:R", "breastbin", "1", 0.1, source="biopsy", rule_id="pathology.biopsy", conflict=True),
    ])
    queue = build_queue(b, i)
    assert keys(queue) == ["breast|A-4:R|breastbin", "breast|A-3:L|acr", "breast|A-2:R|acr",
                           "breast|A-1:L|density"]
    assert list(queue["priority"]) == [1, 2, 3, 4]
    assert list(queue["reasons"]) == ["report_vs_pathology", "two_readers", "high_uncertainty",
                                      "high_uncertainty"]


def test_certain_labels_reviewed_labels_and_missing_labels_stay_out():
    b, i = frames([
        breast("A-1:L", "acr", "2", 0.49),                                # below the threshold
        breast("A-2:L", "acr", "3", 0.9, source="review"),                # already decided by a person
        breast("A-3:L", "density", None, 1.0),                            # missing, nothing to review
        breast("A-4:L", "breastbin", None, 1.0, conflict=True, rule_id="birads.explicit+readers_disagree"),
    ])
    assert keys(build_queue(b, i)) == ["breast|A-4:L|breastbin"]
    assert "breast|A-3:L|density" in keys(build_queue(b, i, config=QueueConfig(include_missing=True)))


def test_labels_a_person_already_decided_do_not_come_back():
    b, i = frames([breast("A-1:L", "acr", "3", 0.9), breast("A-2:L", "acr", "3", 0.9),
                   breast("A-3:L", "acr", "3", 0.9)])
    adjudications = pd.DataFrame({"target_level": ["breast", "breast", "image"],
                                  "target_key": ["A-1:L", "A-2:L", "A-3:L"], "task": ["acr"] * 3,
                                  "decision": ["confirm", "skip", "confirm"]})
    # a skip decides nothing; an image-level decision is not the breast's
    assert keys(build_queue(b, i, adjudications=adjudications)) == ["breast|A-2:L|acr", "breast|A-3:L|acr"]


def test_threshold_is_inclusive():
    b, i = frames([breast("A-1:L", "acr", "3", 0.5)])
    assert keys(build_queue(b, i, config=QueueConfig(u_threshold=0.5))) == ["breast|A-1:L|acr"]
    assert keys(build_queue(b, i, config=QueueConfig(u_threshold=0.51))) == []


def test_view_labels_are_reviewed_per_image_and_conflicting_tags_are_flagged():
    b, i = frames([], [image("I-1", "A-1:L", "view", "CC", 0.0), image("I-2", "A-1:L", "view", "MLO", 0.0),
                       image("I-1", "A-1:L", "acr", "3", 0.9)])
    catalog = pd.DataFrame({"image_key": ["I-1", "I-2"], "breast_key": ["A-1:L"] * 2, "accession_key": ["A-1"] * 2,
                            "view": ["CC", "MLO"], "laterality": ["L", "L"], "view_conflict": [True, False]})
    queue = build_queue(b, i, catalog=catalog)
    # the image-level copy of a breast label (acr) is reviewed on the breast, not per image
    assert keys(queue) == ["image|I-1|view"]
    assert queue.loc[0, "reasons"] == "dicom_tag_conflict" and queue.loc[0, "accession_key"] == "A-1"


def test_orientation_disagreement_queues_every_label_of_that_image_only():
    b, i = frames([breast("A-1:L", "acr", "2", 0.1)],
                  [image("I-1", "A-1:L", "view", "CC", 0.0), image("I-1", "A-1:L", "acr", "2", 0.1),
                   image("I-2", "A-1:L", "view", "MLO", 0.0), image("I-2", "A-1:L", "acr", "2", 0.1)])
    index = pd.DataFrame({"image_key": ["I-1", "I-2"], "cache_path": ["hmi/I-1.png", "hmi/I-2.png"],
                          "orientation_disagreement": [False, True]})
    queue = build_queue(b, i, index=index)
    assert sorted(keys(queue)) == ["image|I-2|acr", "image|I-2|view"]
    assert set(queue["reasons"]) == {"orientation_disagreement"}
    assert '"cache_path": "hmi/I-2.png"' in queue.loc[0, "images_json"]


def predictions(rows):
    cols = ["image_key", "p_breastbin", *[f"p_acr_{c}" for c in range(1, 7)],
            *[f"p_density_{c}" for c in "ABCD"], "p_view_MLO"]
    return pd.DataFrame([{c: r.get(c, 0.0) for c in cols} for r in rows])


def test_strong_model_disagreement_is_queued_and_names_the_models_class():
    b, i = frames([breast("A-1:L", "density", "A", 0.1), breast("A-2:L", "density", "B", 0.1)],
                  [image("I-1", "A-1:L", "view", "CC", 0.0), image("I-2", "A-2:L", "view", "CC", 0.0)])
    preds = predictions([{"image_key": "I-1", "p_density_D": 0.95, "p_density_A": 0.05},
                         {"image_key": "I-2", "p_density_C": 0.7, "p_density_B": 0.3}])   # not strong enough
    queue = build_queue(b, i, predictions=preds)
    assert keys(queue) == ["breast|A-1:L|density"]
    assert queue.loc[0, "reasons"] == "model_disagreement"
    assert queue.loc[0, "model_label"] == "D" and queue.loc[0, "model_p_label"] == pytest.approx(0.05)


def test_breast_malignancy_takes_the_most_suspicious_view():
    b, i = frames([breast("A-1:L", "breastbin", "0", 0.1)],
                  [image("I-1", "A-1:L", "view", "CC", 0.0), image("I-2", "A-1:L", "view", "MLO", 0.0)])
    preds = predictions([{"image_key": "I-1", "p_breastbin": 0.05}, {"image_key": "I-2", "p_breastbin": 0.97, "p_view_MLO": 0.99}])
    queue = build_queue(b, i, predictions=preds)
    assert keys(queue) == ["breast|A-1:L|breastbin"] and queue.loc[0, "model_label"] == "1"


def test_evidence_span_is_the_mention_of_that_task_on_that_breast_quoted_in_the_evidence():
    sentence = "Left breast: grouped calcifications, probably benign, ACR 3."
    b, i = frames([breast("A-1:L", "acr", "3", 0.8, evidence=sentence)])
    mentions = pd.DataFrame({   # columns as label_mining.schemas.REPORT_MENTIONS_SCHEMA
        "accession_key": ["A-1"] * 4, "report_row": [0, 0, 1, 1],
        "type": ["assessment", "density", "assessment", "assessment"],
        "laterality": ["B", "L", "R", "L"], "text": ["BI-RADS 4", "dense", "ACR 2", "ACR 3"],
        "value": ["4", "C", "2", "3"], "span_start": [3, 10, 20, 54], "span_end": [12, 15, 25, 59]})
    queue = build_queue(b, i, mentions=mentions)
    assert (queue.loc[0, "span_start"], queue.loc[0, "span_end"], queue.loc[0, "report_row"]) == (54, 59, 1)
    # the bilateral BI-RADS 4 of the other report is shown beside it; the right breast's ACR 2 is not
    assert json.loads(queue.loc[0, "related_spans"]) == [[0, 3, 12]]


def test_no_mention_of_the_task_leaves_the_span_empty():
    b, i = frames([breast("A-1:L", "density", "C", 0.8, evidence="dense")])
    mentions = pd.DataFrame({"accession_key": ["A-1"], "report_row": [0], "type": ["assessment"],
                             "laterality": ["L"], "text": ["ACR 3"], "value": ["3"], "span_start": [0],
                             "span_end": [5]})
    assert pd.isna(build_queue(b, i, mentions=mentions).loc[0, "span_start"])


def test_same_rows_in_any_order_give_byte_identical_parquet():
    rows = [breast(f"A-{n}:L", "acr", "3", 0.5 + n / 100) for n in range(20)]
    rows += [breast("A-9:R", "breastbin", "1", 0.2, source="surgery", conflict=True)]
    b, i = frames(rows)

    def parquet_bytes(df):
        buf = io.BytesIO()
        pq.write_table(to_arrow(build_queue(df, i)), buf)
        return buf.getvalue()
    assert parquet_bytes(b) == parquet_bytes(b.sample(frac=1, random_state=3))


def test_empty_queue_keeps_its_columns():
    b, i = frames([breast("A-1:L", "acr", "2", 0.0)])
    queue = build_queue(b, i)
    assert queue.empty and list(queue.columns) == QUEUE_COLUMNS
    assert to_arrow(queue).num_rows == 0


def test_max_items_keeps_the_highest_priorities():
    b, i = frames([breast(f"A-{n}:L", "acr", "3", 0.5 + n / 100) for n in range(5)])
    assert keys(build_queue(b, i, config=QueueConfig(max_items=2))) == ["breast|A-4:L|acr", "breast|A-3:L|acr"]


@pytest.mark.parametrize("kind, reason", [
    ("report_vs_pathology", "report_vs_pathology"), ("table_vs_pathology", "report_vs_pathology"),
    ("unattached_pathology", "unattached_pathology"),
    ("two_readers", "two_readers"), ("report_vs_dicom_tag", "report_vs_dicom_tag"),
    ("dicom_tag_conflict", "dicom_tag_conflict"), ("table_vs_report", "label_conflict"),
    ("addendum_revision", "label_conflict"), ("conflicting_statements", "label_conflict"), ("other", "label_conflict"),
])
def test_every_conflict_kind_maps_to_its_reason(kind, reason):
    assert conflict_reason(kind) == reason and set(KIND_REASON) == set(ConflictKind)


def test_the_queue_reads_conflict_kind_not_the_rule_id():
    row = breast("A-1:L", "acr", "3", 0.1) | {"conflict": True, "conflict_kind": "two_readers",
                                               "rule_id": "malignancy.biopsy_benign", "source": "biopsy"}
    b, i = pd.DataFrame([row]), frames([])[1]
    assert build_queue(b, i)["reasons"].tolist() == ["two_readers"]


def test_an_unknown_conflict_kind_is_refused_by_name():
    with pytest.raises(ValueError, match="'readers' is not a curation.tasks.ConflictKind"):
        conflict_reason("readers")


def test_tables_without_conflict_kind_fall_back_to_the_rule_id_reading():
    row = breast("A-1:L", "breastbin", "0", 0.1) | {"conflict": True, "source": "biopsy"}
    b, i = frames([row])
    assert "conflict_kind" not in b.columns
    assert build_queue(b, i)["reasons"].tolist() == ["report_vs_pathology"]
    assert legacy_conflict_reason("birads.explicit+readers_disagree", "report") == "two_readers"


@pytest.mark.parametrize("field, kwargs", [("u_threshold", {"u_threshold": 1.5}),
                                           ("model_disagreement", {"model_disagreement": 0.4}),
                                           ("max_items", {"max_items": 0})])
def test_bad_config_fails_naming_the_field(field, kwargs):
    with pytest.raises(ValueError, match=field):
        QueueConfig(**kwargs)


def test_label_table_without_required_columns_is_refused_by_name():
    b, i = frames([breast("A-1:L", "acr", "3", 0.9)])
    with pytest.raises(ValueError, match=r"breast_labels lacks column\(s\) \['u'\]"):
        build_queue(b.drop(columns="u"), i)


def test_the_queue_reads_the_latest_run_predictions_and_says_so_when_there_are_none(tmp_path):
    from review_app.sample import build_sample_home
    from review_app.tables import build_queue_for_home

    home = build_sample_home(tmp_path / "home", b"k")
    queue, inputs = build_queue_for_home(home)
    assert "model_disagreement" not in ";".join(queue["reasons"])
    assert any(n.startswith("no model predictions under models/") for n in inputs.notes)

    views = pd.read_parquet(home.labels_dir("hmi") / "image_labels.parquet")
    cc = views[views["label"] == "CC"]["image_key"]
    (home.models / "run-a" / "predictions").mkdir(parents=True)
    pd.DataFrame({"image_key": cc, "p_view_MLO": 0.99}).to_parquet(home.models / "run-a" / "predictions" / "hmi_test.parquet")
    queue, inputs = build_queue_for_home(home)
    flagged = queue[queue["reasons"].str.contains("model_disagreement")]
    assert len(flagged) == len(cc) and set(flagged["model_label"]) == {"MLO"}
    assert any("latest run run-a" in n for n in inputs.notes)


def _mention(side, start, end, kind="assessment", value="2"):
    return {"accession_key": "A-1", "report_row": 0, "span_start": start, "span_end": end, "text": "x",
            "type": kind, "value": value, "laterality": side}


def test_a_right_breast_item_never_highlights_a_left_breast_statement():
    b, i = frames([breast("A-1:R", "acr", "2", 0.9)])
    mentions = pd.DataFrame([_mention("L", 0, 6), _mention(None, 10, 16)])
    queue = build_queue(b, i, mentions=mentions)
    assert queue["span_start"].isna().all() and json.loads(queue["related_spans"].iloc[0]) == []
    queue = build_queue(b, i, mentions=pd.DataFrame([_mention("L", 0, 6), _mention("R", 20, 26)]))
    assert (queue["span_start"].iloc[0], queue["span_end"].iloc[0]) == (20, 26)


def test_a_biopsy_label_highlights_no_report_sentence_as_its_evidence():
    b, i = frames([breast("A-1:L", "breastbin", "0", 0.3, source="biopsy", conflict=True,
                          evidence="biopsy 2020-01-20: benign")])
    queue = build_queue(b, i, mentions=pd.DataFrame([_mention("L", 30, 57, value="5")]))
    assert queue["span_start"].isna().all()
    assert json.loads(queue["related_spans"].iloc[0]) == [[0, 30, 57]]   # the contradicting assessment


def test_a_targets_tasks_are_consecutive_and_targets_follow_their_most_urgent_task():
    # breast A: a pathology conflict (tier 0) and a hedged density; breast B: a hedged ACR more
    # uncertain than A's density — B's ACR still comes after both of A's tasks
    breast = pd.DataFrame([
        dict(breast_key="A:L", accession_key="A", task="breastbin", label="0", u=0.3, source="biopsy",
             rule_id="r", evidence="biopsy: benign", conflict=True, conflict_kind="report_vs_pathology", batch="b"),
        dict(breast_key="A:L", accession_key="A", task="density", label="B", u=0.6, source="report",
             rule_id="r", evidence="probably B", conflict=False, conflict_kind=None, batch="b"),
        dict(breast_key="B:R", accession_key="B", task="acr", label="3", u=0.9, source="report",
             rule_id="r", evidence="ACR 3", conflict=False, conflict_kind=None, batch="b"),
    ])
    images = pd.DataFrame(columns=["image_key", "breast_key", "task", "label", "u", "source", "rule_id",
                                   "evidence", "conflict", "conflict_kind", "batch"])
    queue = build_queue(breast, images)
    assert list(zip(queue["target_key"], queue["task"])) == [("A:L", "breastbin"), ("A:L", "density"),
                                                             ("B:R", "acr")]
    assert list(queue["priority"]) == [1, 2, 3]
