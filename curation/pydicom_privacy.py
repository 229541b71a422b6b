"""pydicom names the file it is reading in its messages ("... found in file /archive/DOE^JANE/1.dcm",
"filename: ..., defer_size=..."), and folder and file names often carry patient names and IDs.

:func:`install` (run on importing :mod:`curation`, and again by every reader before it parses a
file, since any code may reset the warnings filters) puts in place:

- a filter on the ``pydicom`` logger that replaces the path in every record with ``<path>`` (the
  record is kept: a run's log still says what went wrong, not where on disk);
- a warnings filter that drops pydicom's duplicate ``warnings.warn`` of those same messages (the
  scrubbed log record already carries it), so nothing path-bearing reaches stderr or compute logs.
"""

from __future__ import annotations

import logging
import re
import warnings

_NAMED = re.compile(r"(in file |filename: |original file )(.+?)(?=, defer_size=| is missing|\)?$)", re.S)
_ABSOLUTE = re.compile(r"(?<![\w:])(?:/[^/\s'\",;]+){2,}/?")


def scrub_paths(text: str) -> str:
    """``text`` with every file path pydicom puts into a message replaced by ``<path>``."""
    text = _NAMED.sub(lambda m: m.group(1) + "<path>", str(text))
    return _ABSOLUTE.sub("<path>", text)


class ScrubPathsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose args do not fit its format: keep the bare format string
            message = str(record.msg)
        record.msg, record.args = scrub_paths(message), None
        return True


_WARNING_PATTERNS = (r"(?s).* in file ", r"(?s).*filename: ", r"(?s).*original file ")


def install() -> None:
    """Idempotent and cheap: safe to call before every file."""
    logger = logging.getLogger("pydicom")
    if not any(isinstance(f, ScrubPathsFilter) for f in logger.filters):
        logger.addFilter(ScrubPathsFilter())
    present = {f[1].pattern for f in warnings.filters if f[0] == "ignore" and f[1] is not None}
    for pattern in _WARNING_PATTERNS:
        if pattern not in present:
            warnings.filterwarnings("ignore", message=pattern)


def dcmread(*args, **kwargs):
    """``pydicom.dcmread`` with the scrubbing in place: every reader of ours parses through this."""
    import pydicom

    install()
    return pydicom.dcmread(*args, **kwargs)
