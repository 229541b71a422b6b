"""Training manifests: one Parquet row per usable image, Hive-partitioned by cohort and split.

This is where curation ends and training begins, so the schema is spelled once here
(:data:`MANIFEST_SCHEMA`, versioned by :data:`SCHEMA_VERSION`) and the files are written
byte-identically for identical inputs: rows sorted by ``image_key``, no pandas metadata,
fixed writer options. Layout::

    $MAMMO_HOME/manifests/cohort=<c>/split=<s>/part-0.parquet
    $MAMMO_HOME/manifests_meta/excluded.parquet       images left out, each with a reason
    $MAMMO_HOME/manifests_meta/dataset_card.parquet   the paper's Table 1 for our data

The two tables about the manifests live beside the manifests root, not in it, so a Hive reader
of ``manifests/`` (``pyarrow.dataset``, DuckDB, Spark) sees manifest rows only.

An image is in a manifest when it is catalogued, preprocessed and has a known patient (the
split unit). Labels are optional per task: a missing label is null with weight 0, so the
network still learns the other tasks and the reconstruction from that image (paper eq. 1-3).
Every catalogued image that is not in a manifest is in ``excluded.parquet`` with a reason.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from curation.home import MammoHome
from curation.parquet_io import write_arrow, write_frame
from curation.schemas import (CACHE_INDEX_SCHEMA, DATASET_CARD_SCHEMA, EXCLUDED_SCHEMA, IMAGE_LABELS_SCHEMA,
                              MANIFEST_PARTITION_COLUMNS, MANIFEST_SCHEMA, MANIFEST_SCHEMA_VERSION)
from curation.split import SplitConfig, split_images
from curation.tasks import LABEL_TASKS, TASKS

SCHEMA_VERSION = MANIFEST_SCHEMA_VERSION
# cohort roles: hmi is split into train/(val)/test, inb is an external test set only (the
# paper never trains on INBreast), vtb is the fine-tuning cohort
DEFAULT_COHORT_ROLES: dict[str, str] = {"hmi": "split", "inb": "test", "vtb": "finetune"}
ROLES = ("split", "test", "finetune")
UNKNOWN = "unknown"


MANIFEST_COLUMNS = tuple(MANIFEST_SCHEMA.names)
PARTITION_COLUMNS = MANIFEST_PARTITION_COLUMNS

EXCLUSION_REASONS = {
    "preprocess_quarantined": "Preprocessing rejected the image; see cache/<batch>/quarantine.parquet.",
    "not_preprocessed": "No cached image for this catalogued image; materialise preprocessed_images for its batch.",
    "patient_unknown": "No PatientID, so the image cannot be kept out of a second split; fix the header at the source.",
    "breast_unknown": "No breast_key (no laterality or no accession/study), so the image cannot be placed by breast.",
}

# DICOM Manufacturer (0008,0070) is free text ("HOLOGIC, Inc.", "Hologic"); strata need one name per vendor
_VENDORS = {"hologic": "Hologic", "siemens": "Siemens", "ge": "GE", "general": "GE", "fuji": "Fujifilm",
            "fujifilm": "Fujifilm", "philips": "Philips", "agfa": "Agfa", "planmed": "Planmed", "ims": "IMS",
            "carestream": "Carestream", "konica": "Konica Minolta", "sectra": "Philips"}


def normalise_vendor(manufacturer) -> str:
    if manufacturer is None or (isinstance(manufacturer, float) and np.isnan(manufacturer)):
        return UNKNOWN
    text = str(manufacturer).strip()
    if not text:
        return UNKNOWN
    first = text.lower().replace(",", " ").replace(".", " ").split()[0]
    return _VENDORS.get(first, text)


def _normalise_label(task: str, value):
    """Stored label string ("1", "B", "ML") -> the manifest value, or None when missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if task in ("breastbin", "acr"):
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"{task} label {value!r} is not an integer") from None
        if number not in TASKS[task]:
            raise ValueError(f"{task} label {value!r} is outside {TASKS[task]}")
        return number
    text = str(value).strip().upper()
    if task == "view" and text == "ML":
        return "MLO"  # lateral views are folded into MLO (paper 2.1)
    if text not in TASKS[task]:
        raise ValueError(f"{task} label {value!r} is outside {TASKS[task]}")
    return text


def wide_labels(image_labels: pd.DataFrame) -> pd.DataFrame:
    """Long ``image_labels`` (one row per image and task) -> one row per image_key with
    ``t, t_u, t_weight, t_source`` per task. Raises on duplicate (image_key, task) or an
    out-of-vocabulary label, naming the offending image keys."""
    frame = image_labels[image_labels["task"].isin(LABEL_TASKS)]
    dup = frame.duplicated(["image_key", "task"], keep=False)
    if dup.any():
        keys = sorted(frame.loc[dup, "image_key"].astype(str).unique())[:5]
        raise ValueError(f"image_labels has {int(dup.sum())} rows sharing an (image_key, task), e.g. {keys}; "
                         "the label miner must emit one row per image and task")
    out = pd.DataFrame(index=pd.Index(sorted(frame["image_key"].astype(str).unique()), name="image_key"))
    for task in LABEL_TASKS:
        part = frame[frame["task"] == task].set_index("image_key")
        values = []
        for key, raw in part["label"].items():
            try:
                values.append(_normalise_label(task, raw))
            except ValueError as exc:
                raise ValueError(f"image_labels row image_key={key} task={task}: {exc}") from None
        out[task] = pd.Series(values, index=part.index, dtype=object).reindex(out.index)
        out[f"{task}_u"] = pd.to_numeric(part["u"], errors="coerce").reindex(out.index)
        out[f"{task}_weight"] = pd.to_numeric(part["weight"], errors="coerce").reindex(out.index)
        out[f"{task}_source"] = part["source"].reindex(out.index)
    return out


def _keys(frame: pd.DataFrame | None) -> set[str]:
    if frame is None or frame.empty or "image_key" not in frame:
        return set()
    return set(frame["image_key"].dropna().astype(str))


def build_rows(catalog: pd.DataFrame, image_labels: pd.DataFrame, cache_index: pd.DataFrame,
               cache_quarantine: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Join catalogue, preprocessed index and labels into manifest rows (plus ``cohort`` and
    ``batch``, before splitting) and the excluded images with their reasons."""
    cat = catalog.drop_duplicates("image_key").set_index("image_key", drop=False)
    index = cache_index.drop_duplicates("image_key").set_index("image_key")
    quarantined = _keys(cache_quarantine)

    # both keys are needed whatever the grouping: the patient for the leak check, the breast for
    # breast-wise evaluation (max over a breast's views)
    reason = pd.Series(None, index=cat.index, dtype=object)
    no_group = cat["breast_key"].isna() | cat["patient_pid"].isna()
    reason[no_group] = np.where(cat.loc[no_group, "patient_pid"].isna(), "patient_unknown", "breast_unknown")
    not_cached = ~cat.index.isin(index.index)
    reason[not_cached] = np.where(cat.index[not_cached].isin(list(quarantined)),
                                  "preprocess_quarantined", "not_preprocessed")
    out = reason.notna()
    excluded = cat.loc[out, ["image_key", "batch", "cohort"]].assign(
        reason=reason[out], message=reason[out].map(EXCLUSION_REASONS)).reset_index(drop=True)
    keep = list(cat.index[~out])

    base = cat.loc[keep, ["image_key", "breast_key", "patient_pid", "cohort", "batch", "manufacturer", "view"]]
    base = base.rename(columns={"view": "_catalog_view"}).reset_index(drop=True)
    idx = index.loc[keep, ["cache_path", "height", "width"]].reset_index()
    rows = base.merge(idx, on="image_key", how="left", validate="one_to_one")

    labels = wide_labels(image_labels) if len(image_labels) else pd.DataFrame(index=pd.Index([], name="image_key"))
    rows = rows.merge(labels, left_on="image_key", right_index=True, how="left")
    for task in LABEL_TASKS:
        for col in (task, f"{task}_u", f"{task}_weight", f"{task}_source"):
            if col not in rows:
                rows[col] = None
        # an image the miner never saw for this task: label missing, fully uncertain, weight 0, no
        # provenance. Values the miner did write are kept as written: the suites judge them.
        rows[f"{task}_u"] = pd.to_numeric(rows[f"{task}_u"], errors="coerce").fillna(1.0)
        rows[f"{task}_weight"] = pd.to_numeric(rows[f"{task}_weight"], errors="coerce").fillna(0.0)

    rows["vendor"] = rows["manufacturer"].map(normalise_vendor)
    rows["density_stratum"] = rows["density"].map(lambda v: UNKNOWN if v is None or pd.isna(v) else str(v))
    view = rows["view"].where(rows["view"].notna(), rows["_catalog_view"].map(
        lambda v: None if v is None or pd.isna(v) else ("MLO" if str(v).upper() in ("MLO", "ML") else str(v).upper())))
    rows["view_stratum"] = view.map(lambda v: v if v in TASKS["view"] else UNKNOWN)
    rows["schema_version"] = SCHEMA_VERSION
    rows = rows.drop(columns=["manufacturer", "_catalog_view"])
    excluded = excluded[list(EXCLUDED_SCHEMA.names)]
    return (rows.sort_values("image_key", kind="mergesort").reset_index(drop=True),
            excluded.sort_values("image_key", kind="mergesort").reset_index(drop=True))


def assign_cohort_splits(rows: pd.DataFrame, config: SplitConfig,
                         cohort_roles: dict[str, str] | None = None,
                         default_role: str = "split") -> pd.DataFrame:
    """Add the ``split`` column: ``split`` cohorts are divided by :func:`curation.split.split_images`
    (each cohort on its own), ``test`` cohorts go to test, ``finetune`` cohorts to finetune."""
    roles = {**DEFAULT_COHORT_ROLES, **(cohort_roles or {})}
    for cohort, role in {**roles, "<default>": default_role}.items():
        if role not in ROLES:
            raise ValueError(f"cohort role for {cohort!r} is {role!r}; expected one of {ROLES}")
    out = rows.copy()
    out["split"] = pd.Series(index=out.index, dtype=object)
    for cohort in sorted(out["cohort"].unique()):
        mask = out["cohort"] == cohort
        role = roles.get(cohort, default_role)
        if role == "split":
            out.loc[mask, "split"] = split_images(out.loc[mask], config).to_numpy()
        else:
            out.loc[mask, "split"] = role
    return out


def to_table(rows: pd.DataFrame, extra_metadata: dict[str, str] | None = None) -> pa.Table:
    """Rows -> a table in exactly :data:`MANIFEST_SCHEMA` (label ints cast, no pandas metadata)."""
    data = {}
    for field in MANIFEST_SCHEMA:
        col = rows[field.name] if field.name in rows else pd.Series([None] * len(rows))
        values = [None if (v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))) else v
                  for v in col.tolist()]
        if pa.types.is_integer(field.type):
            values = [None if v is None else int(v) for v in values]
        elif pa.types.is_string(field.type):
            values = [None if v is None else str(v) for v in values]
        elif pa.types.is_floating(field.type):
            values = [None if v is None else float(v) for v in values]
        data[field.name] = pa.array(values, type=field.type)
    schema = MANIFEST_SCHEMA.with_metadata({**MANIFEST_SCHEMA.metadata, **{
        k.encode(): v.encode() for k, v in sorted((extra_metadata or {}).items())}})
    return pa.Table.from_pydict(data, schema=schema)


def _write_deterministic(table: pa.Table, path: Path) -> None:
    write_arrow(table, path)


def write_manifests(rows: pd.DataFrame, root: Path, extra_metadata: dict[str, str] | None = None) -> list[Path]:
    """Write ``cohort=<c>/split=<s>/part-0.parquet`` under ``root`` (the manifests folder),
    replacing every earlier cohort=/split= folder so a vanished split leaves no stale file."""
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    written = []
    try:
        for (cohort, split), part in rows.groupby(["cohort", "split"], sort=True):
            part = part.sort_values("image_key", kind="mergesort")
            rel = Path(f"cohort={cohort}") / f"split={split}" / "part-0.parquet"
            _write_deterministic(to_table(part, extra_metadata), staging / rel)
            written.append(root / rel)
        for old in sorted(root.glob("cohort=*")):
            shutil.rmtree(old)
        for new in sorted(staging.glob("cohort=*")):
            os.replace(new, root / new.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written


def write_table(frame: pd.DataFrame, schema: pa.Schema, path: Path) -> None:
    write_frame(frame, schema, path)


def excluded_path(home: MammoHome) -> Path:
    return home.excluded_path


def dataset_card_path(home: MammoHome) -> Path:
    return home.dataset_card_path


def read_manifest(home: MammoHome | str | os.PathLike, cohort: str | None = None,
                  split: str | None = None) -> pd.DataFrame:
    """Manifest rows (``MANIFEST_COLUMNS`` + ``cohort``, ``split``) sorted by cohort, split, image_key.

    ``cohort``/``split`` of ``None`` read all. Integer labels with nulls come back as float
    (NaN = missing) — :func:`curation.tasks.class_index` maps both to a class index.
    """
    home = home if isinstance(home, MammoHome) else MammoHome.from_env(home)
    parts = sorted(home.manifests.glob(f"cohort={cohort or '*'}/split={split or '*'}/*.parquet"))
    frames = []
    for path in parts:
        frame = pq.read_table(path, schema=MANIFEST_SCHEMA).to_pandas()
        frame["cohort"] = path.parent.parent.name.split("=", 1)[1]
        frame["split"] = path.parent.name.split("=", 1)[1]
        frames.append(frame)
    if not frames:
        empty = MANIFEST_SCHEMA.empty_table().to_pandas()
        return empty.assign(cohort=pd.Series(dtype=object), split=pd.Series(dtype=object))
    return pd.concat(frames, ignore_index=True)


# --- the dataset card: the paper's Table 1 for our data -------------------------------------------

def dataset_card(rows: pd.DataFrame) -> pd.DataFrame:
    """Long table ``cohort, split, task, class, n`` — labelled images per class per task,
    plus ``task="total"`` rows for images, breasts and patients (class names those)."""
    records = []
    for (cohort, split), part in rows.groupby(["cohort", "split"], sort=True):
        for task in LABEL_TASKS:
            labelled = part[task].dropna()
            for cls in TASKS[task]:
                n = int((labelled.map(lambda v: str(int(v)) if isinstance(TASKS[task][0], int) else str(v))
                         == str(cls)).sum())
                records.append((cohort, split, task, str(cls), n))
            records.append((cohort, split, task, "missing", int(part[task].isna().sum())))
        records.append((cohort, split, "total", "images", len(part)))
        records.append((cohort, split, "total", "breasts", int(part["breast_key"].nunique())))
        records.append((cohort, split, "total", "patients", int(part["patient_pid"].nunique())))
    return pd.DataFrame(records, columns=DATASET_CARD_SCHEMA.names)


def card_markdown(card: pd.DataFrame) -> str:
    """Wide markdown like the paper's Table 1: one row per cohort/split, one column per task class."""
    if card.empty:
        return "no manifest rows"
    card = card.assign(col=card["task"] + " " + card["class"], where=card["cohort"] + "/" + card["split"])
    order = [f"{t} {c}" for t in LABEL_TASKS for c in [*map(str, TASKS[t]), "missing"]]
    order += ["total images", "total breasts", "total patients"]
    wide = card.pivot(index="where", columns="col", values="n").reindex(columns=order).fillna(0).astype(int)
    header = "| cohort/split | " + " | ".join(order) + " |"
    rule = "|---|" + "---|" * len(order)
    body = ["| " + where + " | " + " | ".join(str(v) for v in row) + " |" for where, row in wide.iterrows()]
    return "\n".join([header, rule, *body])


# --- reading the inputs of every batch and building all manifests ----------------------------------

def _read_parquet(path: Path) -> pd.DataFrame | None:
    return pq.read_table(path).to_pandas() if path.is_file() else None


def _concat(frames: list[pd.DataFrame | None]) -> pd.DataFrame:
    present = [f for f in frames if f is not None and len(f.columns)]
    return pd.concat(present, ignore_index=True) if present else pd.DataFrame()


def catalogued_batches(home: MammoHome) -> list[str]:
    return sorted(p.parent.name for p in home.catalog.glob("*/catalog.parquet"))


def load_catalog(home: MammoHome) -> pd.DataFrame:
    return _concat([_read_parquet(home.catalog_path(b)) for b in catalogued_batches(home)])


def load_image_labels(home: MammoHome) -> pd.DataFrame:
    return _concat([_read_parquet(home.image_labels_path(b)) for b in catalogued_batches(home)])


def load_cache_index(home: MammoHome) -> pd.DataFrame:
    return _concat([_read_parquet(home.cache_index_path(b)) for b in catalogued_batches(home)])


def load_cache_quarantine(home: MammoHome, catalog: pd.DataFrame) -> pd.DataFrame:
    """Preprocessing rejections as image keys (the file may key them by ``source_path`` only)."""
    frames = []
    for batch in catalogued_batches(home):
        frame = _read_parquet(home.cache_quarantine_path(batch))
        if frame is None or frame.empty:
            continue
        if "image_key" not in frame:
            frame = frame.assign(image_key=None)
        path_col = next((c for c in ("file_key", "source_path", "path") if c in frame), None)
        if path_col and len(catalog) and frame["image_key"].isna().any():
            # a file rejected before its key was known is matched through its path in the batch
            key_col = "file_key" if "file_key" in catalog else "path"
            paths = catalog[catalog["batch"] == batch].drop_duplicates(key_col).set_index(key_col)["image_key"]
            frame["image_key"] = frame["image_key"].fillna(frame[path_col].map(paths))
        frames.append(frame)
    return _concat(frames)


def missing_inputs(home: MammoHome) -> dict[str, list[str]]:
    """Batches whose labels or cache index are not there yet (their images get excluded/unlabelled)."""
    batches = catalogued_batches(home)
    return {"image_labels": [b for b in batches if not home.image_labels_path(b).is_file()],
            "cache_index": [b for b in batches if not home.cache_index_path(b).is_file()]}


def build_all(home: MammoHome, config: SplitConfig, cohort_roles: dict[str, str] | None = None,
              default_role: str = "split") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read every batch, build and split the rows, write the manifests and ``excluded.parquet``.
    Returns (rows with cohort/split/batch, excluded)."""
    catalog = load_catalog(home)
    if catalog.empty:
        raise ValueError(f"no catalogue under {home.catalog}; materialise dicom_catalog for at least one batch first")
    labels = load_image_labels(home)
    if labels.empty:
        labels = IMAGE_LABELS_SCHEMA.empty_table().to_pandas()
    index = load_cache_index(home)
    if index.empty:
        index = CACHE_INDEX_SCHEMA.empty_table().to_pandas()
    rows, excluded = build_rows(catalog, labels, index, load_cache_quarantine(home, catalog))
    rows = assign_cohort_splits(rows, config, cohort_roles, default_role)
    write_manifests(rows, home.manifests, split_metadata(config))
    for legacy in ("excluded.parquet", "dataset_card.parquet"):   # written inside manifests/ before 2026-12
        (home.manifests / legacy).unlink(missing_ok=True)
    write_table(excluded, EXCLUDED_SCHEMA, excluded_path(home))
    return rows, excluded


def write_dataset_card(home: MammoHome) -> pd.DataFrame:
    """The card of the manifests on disk, written to ``manifests_meta/dataset_card.parquet``."""
    card = dataset_card(read_manifest(home))
    write_table(card, DATASET_CARD_SCHEMA, dataset_card_path(home))
    return card


def split_metadata(config: SplitConfig) -> dict[str, str]:
    """How the split was made, stored in every part file's key-value metadata."""
    return {"mammo_mtl.split.group_by": config.group_by, "mammo_mtl.split.seed": str(config.seed),
            "mammo_mtl.split.ratios": f"train={config.train},val={config.val},test={config.test}",
            "mammo_mtl.split.stratify_density": str(config.stratify_density)}


def read_split_metadata(home: MammoHome) -> dict[str, str]:
    for path in sorted(home.manifests.glob("cohort=*/split=*/*.parquet")):
        meta = pq.read_schema(path).metadata or {}
        return {k.decode(): v.decode() for k, v in meta.items() if k.startswith(b"mammo_mtl.split.")}
    return {}
