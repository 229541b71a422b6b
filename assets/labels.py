"""Label mining as Dagster assets (thin glue over :mod:`label_mining`).

``report_mentions`` + ``breast_labels`` (one mining pass over ``cohorts/<batch>/reports.csv``,
``pathology.csv`` and the optional ``labels.csv``) and ``image_labels`` (breast labels broadcast
to the catalogued images + the view task + review decisions), all partitioned by batch and written
to ``labels/<batch>/``. Identifiers are pseudonymised inside the mining pass, before anything is
written; metadata carries counts only (Table-1 style), never an identifier.
"""



import dagster as dg
import pandas as pd
from pydantic import Field

from curation.parquet_io import write_frame
from curation.tasks import TASKS, ConflictKind
from label_mining.image_labels import build_image_labels
from label_mining.pipeline import BREAST_LABELS_FILE, PROBLEMS_FILE, REPORT_MENTIONS_FILE, mine_labels
from label_mining.schemas import IMAGE_LABELS_SCHEMA
from label_mining.structured_labels import load_structured_labels
from label_mining.uncertainty_policy import load_policy
from pipelines.partitions import batch_partitions
from pipelines.resources import MammoHomeResource, PseudonymKeyResource



class LabelMiningConfig(dg.Config):
    policy_path: str = Field(default="", description="Uncertainty policy YAML; empty = label_mining/policies/default.yaml")
    context_rules_path: str = Field(default="", description="ConText rules YAML; empty = label_mining/rules/context_rules.yaml")
    n_process: int = Field(default=1, ge=1, description="Report parser processes")
    chunk_rows: int = Field(default=2000, ge=1, description="Reports per streamed chunk")


def _policy(config: LabelMiningConfig):
    try:
        return load_policy(config.policy_path or None)
    except (ValueError, FileNotFoundError) as exc:
        raise dg.Failure(description=f"uncertainty policy rejected: {exc}") from exc


def table_one(counts: dict[str, dict[str, int]], share_u_positive: dict[str, float]) -> str:
    """Paper Table 1 style: one row per task, its classes with counts, missing, and the share of u > 0."""
    lines = ["| task | classes | missing | share u>0 |", "|---|---|---|---|"]
    for task, by_class in counts.items():
        present = ", ".join(f"{k}: {v}" for k, v in sorted(by_class.items()) if k != "missing") or "–"
        lines.append(f"| {task} | {present} | {by_class.get('missing', 0)} | {share_u_positive.get(task, 0.0):.1%} |")
    return "\n".join(lines)


def _counts(frame: pd.DataFrame) -> tuple[dict[str, dict[str, int]], dict[str, float]]:
    counts, share = {}, {}
    for task, part in frame.groupby("task", sort=True):
        labels = part["label"].fillna("missing").astype(str)
        counts[task] = {k: int(v) for k, v in labels.value_counts().sort_index().items()}
        present = part[part["label"].notna()]
        share[task] = round(float((present["u"] > 0).mean()), 4) if len(present) else 0.0
    return counts, share


def label_table_problems(frame: pd.DataFrame) -> list[str]:
    """Paper eq. 1-3 invariants of a label table: vocabulary, u in [0, 1], weight 0 iff missing else 1 - u."""
    problems = []
    for task, part in frame.groupby("task", sort=True):
        if task not in TASKS:
            problems.append(f"unknown task {task!r}")
            continue
        allowed = {str(v) for v in TASKS[task]}
        bad = part["label"].notna() & ~part["label"].isin(allowed)
        if bad.any():
            problems.append(f"{task}: {int(bad.sum())} labels outside {sorted(allowed)}")
    if ((frame["u"] < 0) | (frame["u"] > 1)).any():
        problems.append("u outside [0, 1]")
    missing = frame["label"].isna()
    if (frame.loc[missing, "weight"] != 0).any():
        problems.append("a missing label has weight != 0")
    present = frame[~missing]
    if ((present["weight"] - (1 - present["u"])).abs() > 1e-6).any() or (present["weight"] <= 0).any():
        problems.append("a present label has weight != 1 - u or weight <= 0")
    if "conflict_kind" in frame.columns:
        kinds = {k.value for k in ConflictKind}
        flagged = frame["conflict"].fillna(False).astype(bool)
        kind = frame["conflict_kind"]
        if (flagged & kind.isna()).any() or (~flagged & kind.notna()).any():
            problems.append("conflict_kind must be set exactly when conflict is true")
        if (kind.notna() & ~kind.isin(kinds)).any():
            problems.append(f"conflict_kind outside {sorted(kinds)}")
    return problems


@dg.multi_asset(
    specs=[
        dg.AssetSpec("report_mentions", group_name="labels", kinds={"spacy", "parquet"},
                     description="Every assessment / density / pathology statement found in the batch's reports: "
                                 "section, char span, value, laterality, ConText modifiers, rule id "
                                 "(labels/{batch}/report_mentions.parquet)."),
        dg.AssetSpec("breast_labels", group_name="labels", kinds={"parquet"},
                     description="Long table, one row per breast and task (breastbin, acr, density): label or null, "
                                 "uncertainty u, weight 1-u, source, rule id, evidence "
                                 "(labels/{batch}/breast_labels.parquet)."),
    ],
    check_specs=[dg.AssetCheckSpec("breast_labels_well_formed", asset="breast_labels", blocking=True,
                                   description="labels in the task vocabulary, u in [0, 1], weight 0 exactly "
                                               "when missing and 1 - u otherwise, conflict_kind set exactly "
                                               "when conflict is")],
    partitions_def=batch_partitions,
)
def mine_batch_labels(context: dg.AssetExecutionContext, config: LabelMiningConfig, mammo: MammoHomeResource,
                      pseudonym: PseudonymKeyResource):
    batch = context.partition_key
    home = mammo.home()
    root = home.batch_root(batch)
    reports, pathology, structured = root / "reports.csv", root / "pathology.csv", root / "labels.csv"
    if not reports.is_file() and not structured.is_file():
        raise dg.Failure(description=f"batch {batch!r} has neither reports.csv nor labels.csv under {root}; "
                                     "put the clinic's report export (or a structured label table) there")
    policy = _policy(config)
    key, is_demo = pseudonym.key_bytes()
    if is_demo:
        context.log.warning("Pseudonymising with the DEMO key: set MAMMO_PSEUDONYM_KEY for real data.")
    out = home.labels_dir(batch)
    try:
        summary = mine_labels(reports if reports.is_file() else None, out,
                              pathology_csv=pathology if pathology.is_file() else None,
                              labels_csv=structured if structured.is_file() else None,
                              policy_path=config.policy_path or None,
                              context_rules_path=config.context_rules_path or None,
                              n_process=config.n_process, chunk_rows=config.chunk_rows, key=key)
    except (ValueError, FileNotFoundError) as exc:
        raise dg.Failure(description=f"label mining of batch {batch!r} failed: {exc}") from exc
    yield dg.MaterializeResult(asset_key="report_mentions", metadata={
        "path": dg.MetadataValue.path(str(out / REPORT_MENTIONS_FILE)),
        "dagster/row_count": summary.n_mentions,
        "reports": summary.n_reports,
        "report_outcomes": dg.MetadataValue.json(summary.report_outcomes),
        "reports_per_second": round(summary.reports_per_second, 1),
    })
    yield dg.MaterializeResult(asset_key="breast_labels", metadata={
        "path": dg.MetadataValue.path(str(out / BREAST_LABELS_FILE)),
        "dagster/row_count": summary.n_breast_rows,
        "table_1": dg.MetadataValue.md(table_one(summary.class_counts, summary.share_u_positive)),
        "class_counts": dg.MetadataValue.json(summary.class_counts),
        "share_u_positive": dg.MetadataValue.json(summary.share_u_positive),
        "rows_not_used": dg.MetadataValue.json(summary.problems),
        "problems_path": dg.MetadataValue.path(str(out / PROBLEMS_FILE)),
        "policy_version": summary.policy_version,
        "demo_pseudonym_key": is_demo,
    })
    problems = label_table_problems(pd.read_parquet(out / BREAST_LABELS_FILE))
    yield dg.AssetCheckResult(check_name="breast_labels_well_formed", asset_key="breast_labels",
                              passed=not problems,
                              metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none")})


@dg.asset(
    partitions_def=batch_partitions, group_name="labels", kinds={"parquet"},
    deps=["breast_labels", "dicom_catalog", "adjudications"],
    description="One row per catalogued image and task (breastbin, acr, density from its breast; view from the "
                "DICOM tags, u higher when tags disagree), review decisions applied "
                "(labels/{batch}/image_labels.parquet).",
)
def image_labels(context: dg.AssetExecutionContext, config: LabelMiningConfig, mammo: MammoHomeResource,
                 pseudonym: PseudonymKeyResource) -> dg.MaterializeResult:
    batch = context.partition_key
    home = mammo.home()
    catalog_path = home.catalog_path(batch)
    breast_path = home.breast_labels_path(batch)
    for needed, what in ((catalog_path, "dicom_catalog"), (breast_path, "breast_labels")):
        if not needed.is_file():
            raise dg.Failure(description=f"{needed} is missing: materialise {what} for batch {batch!r} first")
    policy = _policy(config)
    key, _ = pseudonym.key_bytes()
    catalog = pd.read_parquet(catalog_path)
    breast = pd.read_parquet(breast_path)
    adjudications_file = home.adjudications_path
    adjudications = pd.read_parquet(adjudications_file) if adjudications_file.is_file() else None
    structured_file = home.batch_root(batch) / "labels.csv"
    structured = load_structured_labels(structured_file, policy).image if structured_file.is_file() else None
    try:
        frame, stats = build_image_labels(catalog, breast, policy, adjudications, structured, key)
    except ValueError as exc:
        raise dg.Failure(description=f"image labels of batch {batch!r}: {exc}") from exc
    out = home.image_labels_path(batch)
    write_frame(frame, IMAGE_LABELS_SCHEMA, out)
    counts, share = _counts(frame)
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(out)),
        "dagster/row_count": len(frame),
        "images": int(frame["image_key"].nunique()),
        "table_1": dg.MetadataValue.md(table_one(counts, share)),
        "class_counts": dg.MetadataValue.json(counts),
        "share_u_positive": dg.MetadataValue.json(share),
        "stats": dg.MetadataValue.json(stats),
        "policy_version": policy.policy_version,
    })


defs = dg.Definitions(assets=[mine_batch_labels, image_labels])
