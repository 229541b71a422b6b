"""Ingest as Dagster assets: ``dicom_catalog`` + ``quarantine`` per batch partition (thin glue
over :mod:`curation.catalog`)."""


import dagster as dg

from curation.catalog import (CATALOG_SCHEMA, QUARANTINE_SCHEMA, REASONS, build_catalog,
                              summarise, write_table)
from curation.dicom_read import DEFAULT_MAX_PIXELS
from curation.file_keys import lookup_path, write_lookup
from pipelines.partitions import batch_partitions
from pipelines.dask_resource import DaskResource
from pipelines.resources import MammoHomeResource, PseudonymKeyResource


class IngestConfig(dg.Config):
    workers: int = 1
    """Header-reading worker processes within this batch (files are hashed and parsed, not decoded)."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """Pixel budget: a header declaring more rows x cols x frames is quarantined as too_large."""


def _markdown_counts(title: str, counts: dict[str, int]) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in counts.items()) or "| – | 0 |"
    return f"| {title} | images |\n|---|---|\n{rows}"


@dg.multi_asset(
    specs=[
        dg.AssetSpec("dicom_catalog", group_name="ingest", kinds={"dicom", "parquet"},
                     description="One pseudonymised row per usable mammogram of the batch "
                                 "(catalog/{batch}/catalog.parquet)."),
        dg.AssetSpec("quarantine", group_name="ingest", kinds={"parquet"},
                     description="One row per rejected file with a reason code and an actionable message "
                                 "(catalog/{batch}/quarantine.parquet)."),
    ],
    check_specs=[
        dg.AssetCheckSpec("every_file_accounted_for", asset="dicom_catalog", blocking=True,
                          description="files found under dicom/ = catalogued + quarantined"),
    ],
    partitions_def=batch_partitions,
)
def ingest_batch(context: dg.AssetExecutionContext, config: IngestConfig,
                 mammo: MammoHomeResource, pseudonym: PseudonymKeyResource, dask: DaskResource):
    batch = context.partition_key
    home = mammo.home()
    batch_root = home.batch_root(batch)
    key, is_demo = pseudonym.key_bytes()
    if is_demo:
        context.log.warning("Pseudonymising with the DEMO key: set MAMMO_PSEUDONYM_KEY for real data.")
    with dask.executor() as executor:   # per-file fan-out: a Dask cluster when configured, else the local pool
        result = build_catalog(batch_root, batch, key, workers=config.workers, max_pixels=config.max_pixels,
                               executor=executor)
    # raw paths (PHI: folder names) only in the private lookup, never in a table or in metadata
    write_lookup(result.files, lookup_path(home.root, batch))
    write_table(result.catalog, CATALOG_SCHEMA, home.catalog_path(batch))
    write_table(result.quarantine, QUARANTINE_SCHEMA, home.quarantine_path(batch))

    counts = summarise(result.catalog)
    reasons = {code: int(n) for code, n in sorted(result.reasons.items())}
    preview_cols = ["image_key", "patient_pid", "laterality", "view", "manufacturer", "rows", "cols",
                    "photometric_interpretation", "file_key"]
    yield dg.MaterializeResult(
        asset_key="dicom_catalog",
        metadata={
            "path": dg.MetadataValue.path(str(home.catalog_path(batch))),
            "dagster/row_count": len(result.catalog),
            "files_found": result.files_found,
            "patients": int(result.catalog["patient_pid"].nunique()),
            "pseudonym_key": "DEMO KEY — not for clinical data" if is_demo else "site key",
            "per_vendor": dg.MetadataValue.md(_markdown_counts("manufacturer", counts["manufacturer"])),
            "per_view": dg.MetadataValue.md(_markdown_counts("view", counts["view"])),
            "per_laterality": dg.MetadataValue.md(_markdown_counts("laterality", counts["laterality"])),
            "laterality_conflicts": int(result.catalog["laterality_conflict"].sum()),
            "view_conflicts": int(result.catalog["view_conflict"].sum()),
            "preview": dg.MetadataValue.md(result.catalog[preview_cols].head(10).to_markdown(index=False)),
        },
    )
    yield dg.MaterializeResult(
        asset_key="quarantine",
        metadata={
            "path": dg.MetadataValue.path(str(home.quarantine_path(batch))),
            "dagster/row_count": len(result.quarantine),
            "reasons": dg.MetadataValue.json(reasons),
            "preview": dg.MetadataValue.md(
                result.quarantine[["file_key", "reason_code", "message"]].head(20).to_markdown(index=False)
                if len(result.quarantine) else "no file quarantined"),
        },
    )
    yield dg.AssetCheckResult(
        asset_key="dicom_catalog",
        check_name="every_file_accounted_for",
        passed=result.accounted,
        metadata={"files_found": result.files_found, "catalogued": len(result.catalog),
                  "quarantined": len(result.quarantine)},
    )


defs = dg.Definitions(assets=[ingest_batch])
