"""``preprocessed_images`` per batch partition: thin glue over :mod:`curation.preprocess.batch`.

Reads ``catalog/<batch>/catalog.parquet`` (from ``dicom_catalog``), writes the content-addressed
images under ``cache/`` and ``cache/<batch>/index.parquet`` + ``quarantine.parquet``.
"""


import base64

import dagster as dg
from pydantic import Field

from curation.preprocess.batch import preprocess_batch
from curation.preprocess.config import PreprocessConfig
from pipelines.partitions import batch_partitions
from pipelines.dask_resource import DaskResource
from pipelines.resources import MammoHomeResource


class PreprocessRunConfig(dg.Config):
    """Run config; ``height`` is small for the demo, 2048 in the paper."""

    height: int = Field(256, description="output height H in pixels (paper: 2048)")
    mask_height: int = Field(256, description="rows of the downsampled copy used for the breast mask")
    workers: int = Field(1, ge=1, description="worker processes within this batch")
    max_pixels: int = Field(60_000_000, ge=1, description="pixel budget; larger declared images -> too_large")
    contact_sheet_examples: int = Field(4, ge=0, le=12, description="before/after pairs in the metadata")

    def preprocess_config(self) -> PreprocessConfig:
        return PreprocessConfig(height=self.height, mask_height=self.mask_height, max_pixels=self.max_pixels)


def _md_counts(title: str, counts: dict[str, int]) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in counts.items()) or "| – | 0 |"
    return f"| {title} | images |\n|---|---|\n{rows}"


@dg.asset(
    partitions_def=batch_partitions,
    deps=["dicom_catalog"],
    group_name="preprocessing",
    kinds={"png", "parquet"},
    description="Each catalogued mammogram decoded (Modality/VOI LUT, MONOCHROME1), flipped so the chest wall is "
                "on the left, cleaned of labels (largest object), cropped, resized to H, padded to a multiple "
                "of 64; cached by (sha256, config hash). cache/{batch}/index.parquet + quarantine.parquet.",
    check_specs=[dg.AssetCheckSpec("every_image_accounted_for", asset="preprocessed_images", blocking=True,
                                   description="catalogued images = indexed + quarantined")],
)
def preprocessed_images(context: dg.AssetExecutionContext, config: PreprocessRunConfig,
                        mammo: MammoHomeResource, dask: DaskResource) -> dg.MaterializeResult:
    batch = context.partition_key
    home = mammo.home()
    pconfig = config.preprocess_config()
    with dask.executor() as executor:   # per-image fan-out: a Dask cluster when configured, else the local pool
        s = preprocess_batch(home, batch, pconfig, workers=config.workers,
                             sheet_examples=config.contact_sheet_examples, executor=executor)
    if s.quarantined:
        context.log.warning(f"{s.quarantined} image(s) of batch {batch} quarantined: {s.reasons}")

    metadata = {
        "index": dg.MetadataValue.path(str(s.index_path)),
        "quarantine": dg.MetadataValue.path(str(s.quarantine_path)),
        "dagster/row_count": s.indexed,
        "catalogued": s.catalogued,
        "processed_now": s.processed,
        "from_cache": s.reused,
        "quarantined": s.quarantined,
        "reasons": dg.MetadataValue.md(_md_counts("reason_code", s.reasons)),
        "flipped": s.flipped,
        "orientation_disagreements": s.orientation_disagreements,
        "images_with_labels_removed": s.labels_removed,
        "config_hash": pconfig.config_hash,
        "config": dg.MetadataValue.json(pconfig.model_dump()),
        "preview": dg.MetadataValue.md(s.preview.to_markdown(index=False) if len(s.preview) else "no image"),
    }
    if s.contact_sheet is not None:
        encoded = base64.b64encode(s.contact_sheet.read_bytes()).decode("ascii")
        metadata["contact_sheet_path"] = dg.MetadataValue.path(str(s.contact_sheet))
        metadata["contact_sheet"] = dg.MetadataValue.md(
            f"before (crop box in green) | after\n\n![contact sheet](data:image/png;base64,{encoded})")
    accounted = s.indexed + s.quarantined == s.catalogued
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[dg.AssetCheckResult(
            check_name="every_image_accounted_for", passed=accounted,
            metadata={"catalogued": s.catalogued, "indexed": s.indexed, "quarantined": s.quarantined})],
    )


defs = dg.Definitions(assets=[preprocessed_images])
