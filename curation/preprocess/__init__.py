"""The paper's deterministic image preprocessing (section 3.2), cached by content.

- ``config.PreprocessConfig``: typed settings; ``config_hash`` keys the cache.
- ``steps``: flip, background estimate, largest component, crop, resize, pad (one function each).
- ``cache``: 16-bit PNG + JSON sidecar per (sha256, config hash); index/quarantine schemas.
- ``runner.run``: a list of files -> index + quarantine frames, N worker processes.
- ``contact_sheet``: before/after PNG for asset metadata.
- ``phantom``: synthetic DICOM mammograms for tests and benchmarks.
"""

from curation.preprocess.config import PreprocessConfig

__all__ = ["PreprocessConfig"]
