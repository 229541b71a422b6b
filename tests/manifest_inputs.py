"""Synthetic, contract-shaped inputs for the split/manifest/validation tests (a helper module, not a test file).

``synthetic_inputs`` writes nothing: it returns the catalogue, long image labels and cache
index of a small cohort, keyed exactly like ingest would key them (HMAC pseudonyms), with
deterministic labels: a patient's malignancy, density and label gaps follow from its number.
"""

from __future__ import annotations

import hashlib

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from curation.home import MammoHome
from curation.pseudonym import file_key, pseudonymise
from curation.schemas import CATALOG_SCHEMA, IMAGE_LABELS_SCHEMA

KEY = b"test-key"
VIEWS = ("CC", "MLO")


def synthetic_inputs(n_patients: int = 20, batch: str = "hmi", malignant_every: int = 4,
                     missing_density_every: int = 5) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    cohort = batch.split("__")[0]
    catalog, labels, index = [], [], []
    for p in range(n_patients):
        pid_raw = f"{batch}-PAT-{p:04d}"
        acc_raw = f"{batch}-ACC-{p:04d}"
        patient_pid = pseudonymise(pid_raw, "patient", KEY)
        accession_key = pseudonymise(acc_raw, "accession", KEY)
        study_key = pseudonymise(f"1.2.3.{batch}.{p}", "study", KEY)
        density = "ABCD"[p % 4]
        for lat in ("L", "R"):
            malignant = int(p % malignant_every == 0 and lat == "L")
            breast_key = f"{accession_key}:{lat}"
            for view in VIEWS:
                uid = f"1.2.3.{batch}.{p}.{lat}.{view}"
                image_key = pseudonymise(uid, "sop", KEY)
                path = f"dicom/{p:04d}/{lat}{view}.dcm"
                catalog.append({
                    "image_key": image_key, "batch": batch, "cohort": cohort, "patient_pid": patient_pid,
                    "accession_key": accession_key, "study_key": study_key,
                    "series_key": pseudonymise(f"{uid}.s", "series", KEY), "breast_key": breast_key,
                    "laterality": lat, "laterality_source": "ImageLaterality", "laterality_conflict": False,
                    "view": view, "view_source": "ViewCodeSequence", "view_conflict": False,
                    "manufacturer": ("HOLOGIC, Inc." if p % 2 else "SIEMENS"), "model": "m",
                    "rows": 256, "cols": 192, "bits_stored": 12, "photometric_interpretation": "MONOCHROME2",
                    "transfer_syntax": "1.2.840.10008.1.2.1", "presentation_intent": "FOR PRESENTATION",
                    "sop_class": "1.2.840.10008.5.1.4.1.1.1.2",
                    "study_date": "2020-01-01", "file_key": file_key(batch, path.encode(), KEY),
                    "sha256": hashlib.sha256(uid.encode()).hexdigest(), "size_bytes": 1000 + p,
                })
                acr = 5 if malignant else (1 + p % 3)
                dens_label = None if p % missing_density_every == 1 else density
                u_dens = 0.3 if p % 3 == 0 else 0.0
                for task, label, u, source in (
                    ("breastbin", str(malignant), 0.0, "pathology"),
                    ("acr", str(acr), 0.1, "report"),
                    ("density", dens_label, u_dens if dens_label else 1.0, "report" if dens_label else None),
                    ("view", view, 0.0, "dicom_tag"),
                ):
                    labels.append({"image_key": image_key, "breast_key": breast_key, "accession_key": accession_key,
                                   "patient_pid": patient_pid, "laterality": lat, "view": view,
                                   "task": task, "label": label,
                                   "u": u, "weight": (1.0 - u) if label is not None else 0.0, "source": source,
                                   "rule_id": "r", "evidence": "", "conflict": False, "policy_version": "1"})
                index.append({"image_key": image_key, "file_key": file_key(batch, path.encode(), KEY),
                              "cache_path": f"ab/{image_key}.png", "height": 128, "width": 128,
                              "crop_x0": 0, "crop_y0": 0, "crop_x1": 100, "crop_y1": 128, "flipped": lat == "R",
                              "orientation_disagreement": False, "config_hash": "c", "sha256": "0" * 64})
    catalog = pd.DataFrame(catalog)
    catalog["rows"] = catalog["rows"].astype("int32")
    catalog["cols"] = catalog["cols"].astype("int32")
    labels = pd.DataFrame(labels)
    # every contract column, as ingest and the label assets write them (null where this data has none)
    for frame, schema in ((catalog, CATALOG_SCHEMA), (labels, IMAGE_LABELS_SCHEMA)):
        for column in schema.names:
            if column not in frame:
                frame[column] = None
    return catalog, labels, pd.DataFrame(index)


def write_inputs(home: MammoHome, batch: str, catalog: pd.DataFrame, labels: pd.DataFrame,
                 index: pd.DataFrame) -> None:
    """Write the three inputs at the paths the real assets use."""
    for frame, path in ((catalog, home.catalog_path(batch)), (labels, home.image_labels_path(batch)),
                        (index, home.cache_index_path(batch))):
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    (home.batch_root(batch) / "dicom").mkdir(parents=True, exist_ok=True)
