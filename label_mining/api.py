"""One report in, its per-breast labels out — the in-memory entry point (tests, notebooks, the
review app's "re-mine this sentence"). Batch work goes through :func:`label_mining.pipeline.mine_labels`."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from label_mining.aggregate import SIDES, report_labels
from label_mining.handling import apply_handling
from label_mining.label_record import LabelRecord
from label_mining.malignancy import PathologyRecord, breastbin_label
from label_mining.report_parser import ParsedReport, ReportParser
from label_mining.uncertainty_policy import ParserPolicy, UncertaintyPolicy, load_policy


@lru_cache(maxsize=1)
def default_policy() -> UncertaintyPolicy:
    return load_policy()


@lru_cache(maxsize=4)
def _cached_parser(parser_policy: ParserPolicy) -> ReportParser:
    return ReportParser(parser_policy)


def mine_report(text, *, reader_level: str | None = None, policy: UncertaintyPolicy | None = None,
                parser: ReportParser | None = None, pathology: tuple[PathologyRecord, ...] = (),
                study_date: dt.date | None = None) -> tuple[dict[tuple[str, str], LabelRecord], ParsedReport]:
    """``({("L", "acr"): LabelRecord, ...}, parsed)`` for sides L/R and tasks breastbin/acr/density."""
    policy = policy or default_policy()
    parser = parser or _cached_parser(policy.parser)
    parsed = parser.parse(text)
    labels = report_labels(parsed, policy, reader_level)
    out = {}
    for side in SIDES:
        acr = labels[(side, "acr")]
        bb = breastbin_label(acr, [p for p in pathology if p.laterality == side], study_date, policy)
        out[(side, "breastbin")] = apply_handling(bb, policy)
        out[(side, "acr")] = apply_handling(acr, policy)
        out[(side, "density")] = apply_handling(labels[(side, "density")], policy)
    return out, parsed
