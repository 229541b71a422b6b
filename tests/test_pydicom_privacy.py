"""pydicom's own messages name the file being read; folder and file names carry patient names, so
no log record or warning of a DICOM read may contain them (and an undecodable name cannot break
the log pipeline either)."""

from __future__ import annotations

import logging
import warnings

import pydicom.misc

from curation.dicom_fuzz import run_fuzz
from curation.pydicom_privacy import install, scrub_paths

PHI_PATH = "/archive/DOE^JANE 1960-01-02/ACC12345/caf\udce9.dcm"


def test_scrub_paths_replaces_the_file_pydicom_names_in_its_messages():
    assert scrub_paths(f"End of file reached before delimiter (FFFE,E0DD) found in file {PHI_PATH}") == \
        "End of file reached before delimiter (FFFE,E0DD) found in file <path>"
    assert "DOE" not in scrub_paths(f"Reading file '{PHI_PATH}'")
    assert "DOE" not in scrub_paths(f"filename: {PHI_PATH}, defer_size=256, force=False")
    assert scrub_paths("Invalid value for VR IS: 'abc'") == "Invalid value for VR IS: 'abc'"


def test_a_pydicom_warning_naming_a_file_is_logged_without_the_path_and_not_warned(caplog):
    install()  # what every reader of ours does before it parses (curation.pydicom_privacy.dcmread)
    with caplog.at_level(logging.WARNING, logger="pydicom"), warnings.catch_warnings(record=True) as caught:
        pydicom.misc.warn_and_log(f"End of file reached before delimiter (FFFE,E0DD) found in file {PHI_PATH}")
    assert [r.getMessage() for r in caplog.records] == \
        ["End of file reached before delimiter (FFFE,E0DD) found in file <path>"]
    assert not [w for w in caught if "DOE" in str(w.message)]


def test_reading_a_fuzz_batch_logs_no_folder_or_file_name(tmp_path, caplog):
    with caplog.at_level(logging.DEBUG, logger="pydicom"):
        fig = run_fuzz(tmp_path, 60, seed=12)
    assert fig.crashes == 0 and fig.unaccounted == 0
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert said  # the mutated files do make pydicom talk
    assert str(tmp_path) not in said and "hidden_" not in said and "caf" not in said
