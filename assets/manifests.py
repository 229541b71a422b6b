"""Split manifests, the dataset card and the checks that guard training (thin glue over
:mod:`curation.manifests`, :mod:`curation.split` and :mod:`curation.validation`).

Every check is blocking and targets ``split_manifests``: the GX suites validate the catalogue
and labels the manifests were built from and the manifests themselves, and the invariants
check leaks, placement and counts. A failing check stops everything downstream of the
manifests (training, evaluation) in the same run, with the failing expectation and example
rows (pseudonymised keys only) in the check's metadata. The checks are attached to the
manifests rather than to the batch-partitioned upstream assets because the manifests are what
training consumes, and they pool every batch.
"""


import json

import dagster as dg
import pandas as pd
from pydantic import Field

from curation import manifests as mf
from curation.split import SplitConfig, stratum_table
from pipelines.resources import MammoHomeResource

UPSTREAM = ("dicom_catalog", "image_labels", "preprocessed_images")
MAX_EXAMPLES = 10


class ManifestConfig(dg.Config):
    """How the cohorts are split into manifests; ratios are fractions of patients (or breasts)."""

    train: float = Field(default=0.8, description="fraction of groups in train")
    val: float = Field(default=0.0, description="fraction of groups in val (0 = no validation split)")
    test: float = Field(default=0.2, description="fraction of groups in test")
    seed: int = Field(default=0, description="same inputs + seed -> byte-identical manifests")
    group_by: str = Field(default="patient", description="'patient' (leak-free) or 'breast' (the paper's protocol)")
    stratify_density: bool = Field(default=True, description="stratify on density too where strata are big enough")
    cohort_roles: dict[str, str] = Field(
        default_factory=dict, description="cohort -> split|test|finetune; merged over hmi=split, inb=test, vtb=finetune")
    default_role: str = Field(default="split", description="role of a cohort not named in cohort_roles")

    def split_config(self) -> SplitConfig:
        return SplitConfig(train=self.train, val=self.val, test=self.test, seed=self.seed,
                           group_by=self.group_by, stratify_density=self.stratify_density)


def markdown_table(frame: pd.DataFrame) -> str:
    """A pipe table whose cells may contain ``|`` (strata are named ``B|CC``): escaped, so a value
    never opens a column of its own."""
    def esc(value) -> str:
        return str(value).replace("|", "\\|")
    frame = frame.rename(columns=esc).map(lambda v: esc(v) if isinstance(v, str) else v)
    return frame.to_markdown(index=False)


def _md(frame: pd.DataFrame, limit: int = MAX_EXAMPLES) -> dg.MetadataValue:
    if frame is None or frame.empty:
        return dg.MetadataValue.md("none")
    return dg.MetadataValue.md(markdown_table(frame.head(limit)))


@dg.asset(
    deps=[dg.AssetDep(key, partition_mapping=dg.AllPartitionMapping()) for key in UPSTREAM],
    group_name="manifests",
    kinds={"parquet"},
    description="One row per usable image, Hive-partitioned as manifests/cohort={c}/split={s}/part-0.parquet; "
                "images left out are in manifests_meta/excluded.parquet with a reason.",
)
def split_manifests(context: dg.AssetExecutionContext, config: ManifestConfig,
                    mammo: MammoHomeResource) -> dg.MaterializeResult:
    try:
        split_config = config.split_config()
    except ValueError as exc:
        raise dg.Failure(description=f"invalid split config: {exc}") from exc
    home = mammo.home()
    try:
        rows, excluded = mf.build_all(home, split_config, config.cohort_roles, config.default_role)
    except ValueError as exc:
        raise dg.Failure(description=str(exc)) from exc

    counts = (rows.assign(malignant=rows["breastbin"] == 1, labelled=rows["breastbin"].notna())
              .groupby(["cohort", "split"])
              .agg(images=("image_key", "size"), breasts=("breast_key", "nunique"),
                   patients=("patient_pid", "nunique"), breastbin_labelled=("labelled", "sum"),
                   malignant=("malignant", "sum"))
              .reset_index())
    split_cohorts = [c for c in sorted(rows["cohort"].unique())
                     if {**mf.DEFAULT_COHORT_ROLES, **config.cohort_roles}.get(c, config.default_role) == "split"]
    strata = {c: stratum_table(rows[rows["cohort"] == c].reset_index(drop=True),
                               rows.loc[rows["cohort"] == c, "split"].reset_index(drop=True), split_config)
              for c in split_cohorts}
    missing = mf.missing_inputs(home)
    for kind, batches in missing.items():
        if batches:
            context.log.warning(f"{kind} missing for batches {batches}: their images are excluded or unlabelled")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(rows),
        "path": dg.MetadataValue.path(str(home.manifests)),
        "schema_version": mf.SCHEMA_VERSION,
        "split_config": dg.MetadataValue.json(json.loads(config.model_dump_json())),
        "images_per_split": _md(counts, 100),
        "excluded_by_reason": dg.MetadataValue.json(
            {k: int(v) for k, v in excluded["reason"].value_counts().sort_index().items()}),
        "excluded_examples": _md(excluded[["image_key", "batch", "reason", "message"]]),
        "strata": dg.MetadataValue.md("\n\n".join(
            f"**{c}** (groups per stratum and split)\n\n{markdown_table(t.reset_index())}"
            for c, t in strata.items()) or "no cohort is split"),
        "missing_inputs": dg.MetadataValue.json(missing),
    })


@dg.asset(deps=[split_manifests], group_name="manifests", kinds={"parquet"},
          description="The paper's Table 1 for our data: per cohort x split, labelled images per task and "
                      "class, images, breasts, patients (manifests_meta/dataset_card.parquet).")
def dataset_card(mammo: MammoHomeResource) -> dg.MaterializeResult:
    home = mammo.home()
    card = mf.write_dataset_card(home)
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(mf.dataset_card_path(home))),
        "table_1": dg.MetadataValue.md(mf.card_markdown(card)),
        "dagster/row_count": len(card),
    })


# --- checks ----------------------------------------------------------------------------------------

def _suite_result(frame: pd.DataFrame, suite: str, what: str) -> dg.AssetCheckResult:
    from curation.validation import validate  # GX import takes seconds; only where a check runs

    if frame.empty:
        return dg.AssetCheckResult(passed=False, metadata={"summary": f"no {what} rows to validate"})
    report = validate(frame, suite, max_examples=MAX_EXAMPLES)
    failing = [{"expectation": f.expectation, "column": f.column, "rule": f.description,
                "unexpected_count": f.unexpected_count, "examples": f.examples[:MAX_EXAMPLES], "error": f.error,
                "observed": f.observed}
               for f in report.failures]
    return dg.AssetCheckResult(passed=report.success, metadata={
        "summary": report.summary(),
        "suite_version": report.suite_version,
        "suite_fingerprint": report.fingerprint,
        "rows": report.n_rows,
        "failing_expectations": dg.MetadataValue.md(report.failures_markdown()),
        "failures": dg.MetadataValue.json(failing),
    })


@dg.asset_check(asset=split_manifests, blocking=True,
                description="GX suite 'catalog' on every batch's catalogue the manifests were built from")
def catalog_expectations(mammo: MammoHomeResource) -> dg.AssetCheckResult:
    return _suite_result(mf.load_catalog(mammo.home()), "catalog", "catalogue")


@dg.asset_check(asset=split_manifests, blocking=True,
                description="GX suite 'labels' on every batch's image_labels: domains, u in [0,1], "
                            "weight 0 exactly when the label is missing")
def labels_expectations(mammo: MammoHomeResource) -> dg.AssetCheckResult:
    home = mammo.home()
    unlabelled = mf.missing_inputs(home)["image_labels"]
    if unlabelled:
        # their images would enter the manifests with every weight 0: trainable for nothing
        return dg.AssetCheckResult(passed=False, metadata={
            "summary": f"no labels/{{batch}}/image_labels.parquet for batches {unlabelled}; "
                       "materialise image_labels for them first",
            "batches_without_labels": dg.MetadataValue.json(unlabelled)})
    return _suite_result(mf.load_image_labels(home), "labels", "image label")


@dg.asset_check(asset=split_manifests, blocking=True,
                description="GX suite 'manifest' on the written manifests, read back as training reads them")
def manifest_expectations(mammo: MammoHomeResource) -> dg.AssetCheckResult:
    return _suite_result(mf.read_manifest(mammo.home()), "manifest", "manifest")


@dg.asset_check(asset=split_manifests, blocking=True,
                description="no patient (breast, with breast-wise grouping) in two splits of a cohort; no "
                            "training patient in another cohort's test split")
def no_patient_leak(mammo: MammoHomeResource) -> dg.AssetCheckResult:
    from curation.validation.invariants import patient_leaks

    home = mammo.home()
    rows = mf.read_manifest(home)
    group_by = mf.read_split_metadata(home).get("mammo_mtl.split.group_by", "patient")
    blocking, warning = patient_leaks(rows, group_by)
    return dg.AssetCheckResult(
        passed=blocking.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"group_by": group_by, "leaks": len(blocking), "leak_examples": _md(blocking),
                  "patients_across_splits_breastwise": len(warning), "breastwise_examples": _md(warning)})


@dg.asset_check(asset=split_manifests, blocking=True,
                description="every labelled, preprocessed, catalogued image is in exactly one manifest row "
                            "(or excluded with a reason)")
def every_image_once(mammo: MammoHomeResource) -> dg.AssetCheckResult:
    from curation.validation.invariants import placement_errors

    home = mammo.home()
    catalog = mf.load_catalog(home)
    problems = placement_errors(mf.read_manifest(home), catalog, mf.load_image_labels(home),
                                mf.load_cache_index(home), _read_excluded(home))
    return dg.AssetCheckResult(passed=problems.empty, metadata={
        "problems": len(problems), "examples": _md(problems)})


@dg.asset_check(asset=split_manifests, blocking=True,
                description="per batch: catalogued = in a manifest + excluded with a reason; nothing else")
def counts_reconcile(mammo: MammoHomeResource) -> dg.AssetCheckResult:
    from curation.validation.invariants import reconcile

    home = mammo.home()
    catalog = mf.load_catalog(home)
    table, problems = reconcile(mf.read_manifest(home), _read_excluded(home), catalog)
    ingest_q = {b: len(pd.read_parquet(home.quarantine_path(b))) for b in mf.catalogued_batches(home)
                if home.quarantine_path(b).is_file()}
    table["ingest_quarantined"] = table["batch"].map(ingest_q).fillna(0).astype(int)
    return dg.AssetCheckResult(passed=problems.empty, metadata={
        "counts": _md(table, 1000), "problems": len(problems), "examples": _md(problems)})


def _read_excluded(home) -> pd.DataFrame:
    path = mf.excluded_path(home)
    return pd.read_parquet(path) if path.is_file() else pd.DataFrame(columns=mf.EXCLUDED_SCHEMA.names)


CHECKS = [catalog_expectations, labels_expectations, manifest_expectations, no_patient_leak, every_image_once,
          counts_reconcile]

defs = dg.Definitions(assets=[split_manifests, dataset_card], asset_checks=CHECKS)
