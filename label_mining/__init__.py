"""Clinical mammography reports -> per-breast task labels with uncertainty u and provenance.

Pure Python + spaCy (no Dagster). Entry points: :func:`label_mining.api.mine_report` (one text),
:func:`label_mining.pipeline.mine_labels` (CSV -> Parquet, streamed, ``n_process``), and
:func:`label_mining.image_labels.build_image_labels` (breast labels + DICOM view -> image labels).
"""
