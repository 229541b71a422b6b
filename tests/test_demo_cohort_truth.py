"""The truth table describes the files exactly: boxes, orientation, defects, labels and proportions."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.errors import InvalidDicomError

from curation.demo_cohort import generate_cohort
from curation.demo_cohort.defects import DEFECT_KINDS
from curation.demo_cohort.plan import FOLLOW_UP_CONFIRMS_DAYS, plan_exam
from curation.demo_cohort.profiles import profile
from curation.demo_cohort.render import render_view
from curation.demo_cohort.reports import write_report
from curation.demo_cohort.seeding import rng_for


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    """Enough images (>= 400) for every defect kind to be planted, at a tiny height."""
    out = tmp_path_factory.mktemp("hmi_big")
    generate_cohort("hmi", 105, 3, out, height=64)
    return out


@pytest.fixture(scope="module")
def truth(big) -> pd.DataFrame:
    return pd.read_parquet(big / "truth.parquet")


def _display(ds) -> np.ndarray:
    arr = ds.pixel_array.astype(np.float64)
    return arr.max() - arr if ds.PhotometricInterpretation == "MONOCHROME1" else arr


def test_every_file_under_dicom_has_exactly_one_image_row(big, truth):
    files = sorted(p.relative_to(big).as_posix() for p in (big / "dicom").rglob("*.dcm"))
    images = truth[truth.level == "image"]
    assert sorted(images.file) == files
    assert images.file.is_unique


def test_every_defect_kind_is_planted_and_behaves_as_recorded(big, truth):
    images = truth[truth.level == "image"]
    planted = images.dropna(subset=["planted_defect"])
    assert set(planted.planted_defect) == set(DEFECT_KINDS)
    assert len(planted) <= 0.03 * len(images)
    for row in planted.itertuples():
        path = big / row.file
        kind = row.planted_defect
        if kind == "not_dicom":
            with pytest.raises(InvalidDicomError):
                pydicom.dcmread(path)
        elif kind == "truncated":
            with pytest.raises(Exception):
                pydicom.dcmread(path).pixel_array
        elif kind == "wrong_modality":
            assert pydicom.dcmread(path).Modality == "CT"
        elif kind == "no_pixel_data":
            assert "PixelData" not in pydicom.dcmread(path)
        elif kind == "duplicate_sop":
            originals = images[(images.sop_instance_uid == row.sop_instance_uid) & images.planted_defect.isna()]
            assert len(originals) == 1
            assert path.read_bytes() == (big / originals.file.iloc[0]).read_bytes()
        elif kind == "laterality_unknown":
            ds = pydicom.dcmread(path)
            assert not {"ImageLaterality", "Laterality", "PatientOrientation", "SeriesDescription"} & set(ds.dir())
            assert ds.pixel_array.shape == (64, row.cols)


def test_no_defects_option_plants_none(tmp_path):
    summary = generate_cohort("inb", 4, 3, tmp_path / "clean", height=64, defects=False)
    truth = pd.read_parquet(tmp_path / "clean" / "truth.parquet")
    assert summary.defects == {} and truth.planted_defect.isna().all()


def test_lesion_boxes_lie_inside_the_image_and_every_malignant_image_has_one(truth):
    images = truth[(truth.level == "image") & truth.planted_defect.isna()]
    for row in images.itertuples():
        for x0, y0, x1, y1 in row.lesion_boxes:
            assert 0 <= x0 < x1 <= row.cols and 0 <= y0 < y1 <= row.rows
        if row.malignant:
            assert len(row.lesion_boxes) >= 1
    assert images[images.acr == 1].lesion_boxes.map(len).eq(0).all()


def test_chest_wall_is_on_the_side_the_laterality_implies(big, truth):
    images = truth[(truth.level == "image") & truth.planted_defect.isna()]
    assert (images.chest_wall_side == images.laterality.map({"L": "left", "R": "right"})).all()
    for row in images.head(60).itertuples():
        img = _display(pydicom.dcmread(big / row.file))
        for x0, y0, x1, y1 in row.text_boxes:  # ignore burned-in letters when judging tissue
            img[y0:y1, x0:x1] = np.median(img)
        strip = max(2, int(row.cols) // 10)
        left, right = img[:, :strip].mean(), img[:, -strip:].mean()
        assert (left > right) == (row.laterality == "L"), row.file


def test_burned_in_text_stays_outside_the_breast():
    prof = profile("vtb")
    checked = 0
    for index in range(8):
        exam = plan_exam(prof, 5, index)
        for view in exam.images:
            for height in (64, 200):
                rendered = render_view(exam, view, height, 5)
                assert rendered.text_boxes, (index, view)
                for x0, y0, x1, y1 in rendered.text_boxes:
                    assert not rendered.mask[y0:y1, x0:x1].any()
                    checked += 1
    assert checked > 50


def _plans(cohort: str, n: int, seed: int = 0):
    prof = profile(cohort)
    for i in range(n):
        exam = plan_exam(prof, seed, i)
        yield exam, *write_report(exam, prof, rng_for(seed, cohort, i, "report"))


def test_cohort_proportions_follow_the_paper_datasets():
    stats = {}
    for cohort in ("hmi", "inb", "vtb"):
        breasts, vendors, acr_missing, density_missing = [], Counter(), 0, 0
        for exam, _report, labels in _plans(cohort, 300):
            vendors[exam.manufacturer] += 1
            for lat in ("L", "R"):
                breasts.append(exam.breasts[lat].malignant)
                acr_missing += labels.acr[lat] is None
                density_missing += labels.density[lat] is None
        stats[cohort] = (np.mean(breasts), vendors, acr_missing / len(breasts), density_missing / len(breasts))
    hmi, inb, vtb = stats["hmi"], stats["inb"], stats["vtb"]
    assert 0.40 < hmi[0] < 0.60 and 0.18 < inb[0] < 0.32 and vtb[0] < 0.08
    assert len(hmi[1]) == 4 and min(hmi[1].values()) > 45
    assert list(inb[1]) == ["SIEMENS"]
    assert vtb[1].most_common(1)[0][0] == "HOLOGIC, Inc." and len(vtb[1]) > 1
    # hmi and inb are fully labelled (the addendum cases still give a final category)
    assert hmi[2] == inb[2] == 0 and hmi[3] == inb[3] == 0
    assert vtb[2] > 0.3 and vtb[3] > 0.2


def test_reports_vary_in_wording_as_real_reports_do():
    texts = [r.report_text for c in ("hmi", "inb", "vtb") for _e, r, _l in _plans(c, 150) if r is not None]
    joined = "\n".join(texts)
    spellings = {m.group(0) for m in re.finditer(r"(?i)\b(bi-?rads|birads)(\s+category)?[\s:\-]*", joined)}
    assert len(spellings) >= 6
    for pattern in (r"\b4[ABC]\b", "probably benign", "cannot exclude", "No suspicious mass", "ADDENDUM", "ACR type",
                    "heterogeneously dense", r"between [a-d] and [a-d]", r"(right|left), BI-RADS", "bilaterally",
                    r"ACR [1-4]\b", r"\(then BI-RADS [12]\)"):
        assert re.search(pattern, joined, flags=re.IGNORECASE), pattern
    assert len({t.split()[0] for t in texts}) >= 10                # many ways to start a report
    assert any(re.search(r"\b[A-D]\s*[–/]\s*[A-D]\b", t) for t in texts)   # density ranges
    lengths = np.array([len(t) for t in texts])
    assert 200 < np.median(lengths) < 700


def test_report_labels_are_what_the_text_states():
    for cohort in ("hmi", "vtb"):
        for exam, report, labels in _plans(cohort, 200):
            if report is None:
                assert labels.acr == {"L": None, "R": None}
                continue
            text = report.report_text
            lower = text.lower()
            # no planted identity ever reaches the report text
            for value in (exam.patient_id, exam.accession, exam.patient_name.split("^")[1], exam.referring.split("^")[1]):
                assert value not in text
            if labels.acr["L"] is None and labels.acr["R"] is None:
                assert not re.search(r"(bi-?rads|birads)[\s:\-]*(category\s*)?[0-6]", lower)
                assert "negative mammogram" not in lower and "probably benign" not in lower
            for lat in ("L", "R"):
                if labels.revised_by_addendum[lat]:
                    assert "addendum" in lower and str(labels.acr[lat]) in lower.split("addendum", 1)[1]
                if labels.acr[lat] is not None and not labels.revised_by_addendum[lat]:
                    assert labels.acr[lat] == exam.breasts[lat].acr
            unassessed = [lat for lat in ("L", "R") if labels.acr[lat] is None]
            if len(unassessed) == 1:   # only the other breast is assessed: no assessment words leak in
                assert "probably benign" not in lower or exam.breasts[("R" if unassessed[0] == "L" else "L")].acr == 3
            if labels.density["L"] is not None:
                assert labels.density == {lat: exam.breasts[lat].density for lat in ("L", "R")}


def test_pathology_rows_back_the_pathology_truth(big, truth):
    pathology = pd.read_csv(big / "pathology.csv")
    reports = pd.read_csv(big / "reports.csv")
    assert set(pathology.result) <= {"malignant", "benign", "high_risk"}
    assert set(pathology.source) <= {"biopsy", "surgery", "follow_up"}
    study = dict(zip(reports.patient_id, pd.to_datetime(reports.study_date)))
    breasts = truth[truth.level == "breast"].set_index(["patient_id", "laterality"])
    for (pid, lat), rows in pathology.groupby(["patient_id", "laterality"]):
        days = (pd.to_datetime(rows.date) - study[pid]).dt.days
        assert (days > 0).all()
        expected = 1 if (rows.result == "malignant").any() else 0 if (
            rows.source.isin(["biopsy", "surgery"]).any() or (days >= FOLLOW_UP_CONFIRMS_DAYS).any()) else None
        got = breasts.loc[(pid, lat), "pathology_malignant"]
        assert (None if pd.isna(got) else int(got)) == expected
    malignant = truth[(truth.level == "breast") & (truth.malignant == 1)]
    assert malignant.pathology_malignant.eq(1).all()        # hmi: every cancer is biopsy-proven


def test_headers_vary_as_in_the_wild_and_truth_records_the_real_values(big, truth):
    images = truth[(truth.level == "image") & truth.planted_defect.isna()]
    assert {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.5"} <= set(images.transfer_syntax)
    assert images.photometric_interpretation.value_counts()["MONOCHROME2"] > 0.6 * len(images)
    assert (images.photometric_interpretation == "MONOCHROME1").any()
    assert (images.presentation_intent == "FOR PROCESSING").any() and (images.view == "ML").any()
    assert set(images.bits_stored) <= set(range(12, 17)) and len(set(images.bits_stored)) >= 2
    per_exam = images.groupby("accession_number").size()
    assert per_exam.max() == 4 and per_exam.min() < 4               # some exams miss a view
    quirks = Counter(q for qs in images.tag_quirks for q in qs)
    assert {"view_conflict", "laterality_conflict", "view_code_missing", "series_laterality_only"} <= set(quirks)
    for row in images[images.tag_quirks.map(len) > 0].itertuples():
        ds = pydicom.dcmread(big / row.file)
        if "view_conflict" in row.tag_quirks:
            assert ds.ViewPosition != row.view and ds.ViewCodeSequence[0].CodeMeaning.startswith(
                {"CC": "cranio", "MLO": "medio-lateral o", "ML": "medio-lateral"}[row.view])
        if "laterality_conflict" in row.tag_quirks:
            assert ds.ImageLaterality != row.laterality
        if "series_laterality_only" in row.tag_quirks:
            assert "ImageLaterality" not in ds and ds.Laterality == row.laterality
    for row in images[images.transfer_syntax == "1.2.840.10008.1.2.5"].itertuples():
        assert pydicom.dcmread(big / row.file).pixel_array.shape == (row.rows, row.cols)


def _thumbnail_features(big: Path, row) -> np.ndarray:
    img = _display(pydicom.dcmread(big / row.file))
    if row.laterality == "R":
        img = img[:, ::-1]
    for x0, y0, x1, y1 in row.text_boxes:
        img[y0:y1, x0:x1] = img.min()
    img = (img - img.min()) / (np.ptp(img) + 1e-9)
    import cv2
    highpass = img - cv2.GaussianBlur(img, (0, 0), 2)
    breast = img > 0.15
    return np.array([np.quantile(img, 0.99), img.max(), np.quantile(np.abs(highpass), 0.99), highpass.max(),
                     img[breast].mean() if breast.any() else 0.0])


def test_malignancy_and_density_are_learnable_from_small_images_but_not_trivially(big, truth):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold, cross_val_predict

    images = truth[(truth.level == "image") & truth.planted_defect.isna()
                   & (truth.presentation_intent == "FOR PRESENTATION")]
    X = np.stack([_thumbnail_features(big, r) for r in images.itertuples()])
    X = (X - X.mean(0)) / (X.std(0) + 1e-9)
    y = images.malignant.to_numpy()
    p = cross_val_predict(LogisticRegression(max_iter=1000), X, y, groups=images.patient_id, cv=GroupKFold(4),
                          method="predict_proba")[:, 1]
    auc = roc_auc_score(y, p)
    assert 0.65 < auc < 0.97, auc          # five hand-made features at 64 px: a signal, not a giveaway
    # denser composition -> brighter breast on average (Spearman rank correlation)
    order = images.density.map({"A": 0, "B": 1, "C": 2, "D": 3}).to_numpy()
    brightness = X[:, 4]
    rho = np.corrcoef(np.argsort(np.argsort(order)), np.argsort(np.argsort(brightness)))[0, 1]
    assert rho > 0.3, rho


def test_double_read_exams_have_a_senior_reading_of_record_and_a_second_report(big, truth):
    reports = pd.read_csv(big / "reports.csv", keep_default_na=False)
    breasts = truth[truth.level == "breast"]
    double = breasts[breasts.second_reader_acr.notna()]
    assert 2 <= double.accession_number.nunique() <= 20
    counts = reports.accession_number.value_counts()
    assert set(counts[counts == 2].index) == set(double.accession_number) and counts.max() == 2
    for accession, rows in reports[reports.accession_number.isin(double.accession_number)].groupby(
            "accession_number", sort=False):
        assert list(rows.reader_level)[0] == "senior" and list(rows.reader_level)[1] in ("junior", "resident")
        assert rows.reader_id.nunique() == 2
    for row in double.itertuples():
        if row.readers_disagree:
            assert abs(int(row.second_reader_acr) - int(row.report_acr)) == 1
        else:
            assert int(row.second_reader_acr) == int(row.report_acr)


def test_every_finding_kind_can_be_worded_at_every_category():
    from curation.demo_cohort.plan import Finding
    from curation.demo_cohort.reports import _Writer

    writer = _Writer(np.random.default_rng(0))
    for kind in ("mass_benign", "calc_benign", "mass_indeterminate", "mass_malignant", "calc_malignant"):
        for category in range(1, 7):
            finding = Finding(kind, category, 0.5, 0.0, 0.04, 3, 1)
            for with_category in (False, True):
                text = writer.finding(finding, with_category, neutral=False)
                assert text.endswith(".") and len(text) > 15
                assert (f"{category}" in text) == with_category or not with_category
            assert "benign" not in writer.finding(finding, False, neutral=True)
