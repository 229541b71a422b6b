"""Run a suite on a DataFrame and say, in plain terms, what failed and on which rows.

GX runs in an ephemeral context (nothing written to disk, no analytics call home) with a
pandas datasource; the result is reduced to a :class:`ValidationReport` that holds only
pseudonymised key columns and the offending values, so it can go into Dagster metadata and
logs without leaking anything the tables themselves do not already hold.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass, field

import pandas as pd

# before GX is imported: an ephemeral context must not try to phone home (no network here)
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402

from curation.validation.suites import KEY_COLUMNS, SUITE_VERSIONS, build_suite, suite_fingerprint  # noqa: E402

logging.getLogger("great_expectations").setLevel(logging.WARNING)


@dataclass(frozen=True)
class FailedExpectation:
    expectation: str                 # GX type, e.g. expect_column_values_to_be_between
    description: str                 # the rule in words
    column: str | None
    kwargs: dict
    unexpected_count: int | None
    unexpected_percent: float | None
    observed: object                 # observed value for table-level expectations
    examples: list[dict]             # key columns + offending values of the first failing rows
    error: str | None = None         # set when GX could not evaluate (e.g. the column is absent)


@dataclass(frozen=True)
class ValidationReport:
    suite: str
    suite_version: str
    fingerprint: str
    success: bool
    n_rows: int
    n_expectations: int
    failures: list[FailedExpectation] = field(default_factory=list)

    def summary(self) -> str:
        if self.success:
            return f"suite {self.suite} v{self.suite_version}: all {self.n_expectations} expectations met on {self.n_rows} rows"
        names = ", ".join(f"{f.expectation}({f.column or ''})" for f in self.failures[:5])
        return (f"suite {self.suite} v{self.suite_version}: {len(self.failures)} of {self.n_expectations} "
                f"expectations failed on {self.n_rows} rows: {names}")

    def failures_markdown(self, max_examples: int = 3) -> str:
        if not self.failures:
            return "no failing expectation"
        lines = ["| expectation | column | rule | unexpected | examples |", "|---|---|---|---|---|"]
        for f in self.failures:
            examples = "; ".join(", ".join(f"{k}={v}" for k, v in ex.items()) for ex in f.examples[:max_examples])
            what = f.error or examples or (f"observed {f.observed}" if f.observed is not None else "")
            lines.append(f"| {f.expectation} | {f.column or ''} | {f.description} | "
                         f"{'' if f.unexpected_count is None else f.unexpected_count} | {what.replace('|', '/')} |")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return _json_safe(asdict(self))


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            return str(value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def _exception_message(info) -> str | None:
    """GX puts the error either at the top level or keyed by the metric that raised it."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    messages = sorted({str(v.get("exception_message")) for v in info.values()
                       if isinstance(v, dict) and v.get("raised_exception")})
    return "; ".join(messages) or None


def _describe(config) -> tuple[str | None, dict]:
    kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id", "patterns")}
    if "row_condition" in kwargs and kwargs["row_condition"] is not None:
        kwargs["row_condition"] = repr(kwargs["row_condition"])
    if isinstance(kwargs.get("value_set"), list) and len(kwargs["value_set"]) > 12:
        vs = kwargs["value_set"]
        kwargs["value_set"] = [*vs[:3], "...", *vs[-2:]]
    column = kwargs.get("column")
    if column is None and "column_A" in kwargs:
        column = f"{kwargs['column_A']}+{kwargs['column_B']}"
    elif column is None and "column_list" in kwargs:
        column = "+".join(kwargs["column_list"])
    return column, _json_safe(kwargs)


def validate(frame: pd.DataFrame, suite_name: str, max_examples: int = 5) -> ValidationReport:
    """Validate ``frame`` against the named suite (``catalog``, ``labels``, ``manifest``)."""
    frame = frame.reset_index(drop=True)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    suite = build_suite(suite_name, context)
    batch = (context.data_sources.add_pandas(f"{suite_name}_frame")
             .add_dataframe_asset(suite_name)
             .add_batch_definition_whole_dataframe("whole")
             .get_batch(batch_parameters={"dataframe": frame}))
    index_columns = [c for c in KEY_COLUMNS[suite_name] if c in frame.columns]
    result_format = {"result_format": "COMPLETE", "partial_unexpected_count": max_examples}
    if index_columns:
        result_format["unexpected_index_column_names"] = index_columns
    result = batch.validate(suite, result_format=result_format)

    failures = []
    for r in result.results:
        if r.success:
            continue
        config = r.expectation_config
        column, kwargs = _describe(config)
        error = _exception_message(r.exception_info)
        res = r.result or {}
        examples = res.get("unexpected_index_list") or []
        if examples and not isinstance(examples[0], dict):  # no key columns: positional index
            examples = [{"row": i} for i in examples]
        failures.append(FailedExpectation(
            expectation=config.type,
            description=config.description or config.type.replace("_", " "),
            column=column,
            kwargs=kwargs,
            unexpected_count=res.get("unexpected_count"),
            unexpected_percent=_json_safe(res.get("unexpected_percent")),
            observed=_json_safe(res.get("observed_value")),
            examples=_json_safe(examples[:max_examples]),
            error=error,
        ))
    failures.sort(key=lambda f: (f.expectation, f.column or "", f.description))
    return ValidationReport(
        suite=suite_name, suite_version=SUITE_VERSIONS[suite_name], fingerprint=suite_fingerprint(suite_name),
        success=bool(result.success), n_rows=len(frame), n_expectations=len(result.results), failures=failures)
