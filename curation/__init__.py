"""Curation: ingest, decode, preprocess, split; no Dagster imports."""

from curation import pydicom_privacy as _pydicom_privacy

_pydicom_privacy.install()
