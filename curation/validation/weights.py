"""A GX expectation for paper eq. 1-3: a present label's loss weight is ``1 - u``.

The built-in ``expect_multicolumn_sum_to_equal`` compares floats exactly, but the label miner
stores ``weight = round(1 - u, 6)``; a rounding difference is not a wrong weight, a weight that
disagrees with ``u`` by more than the tolerance is (it would silently re-weight the loss).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnPairMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnPairMapMetricProvider,
    column_pair_condition_partial,
)

WEIGHT_TOLERANCE = 1e-5


class ColumnPairValuesSumToOne(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.sum_to_one"
    condition_domain_keys = ("batch_id", "table", "column_A", "column_B", "row_condition", "condition_parser",
                             "ignore_row_if")
    condition_value_keys = ("tolerance",)

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A, column_B, tolerance, **kwargs):
        return (column_A.astype(float) + column_B.astype(float) - 1.0).abs() <= tolerance


class ExpectColumnPairValuesToSumToOne(ColumnPairMapExpectation):
    """Expect ``column_A + column_B == 1`` within ``tolerance`` on every (conditioned) row."""

    tolerance: float = WEIGHT_TOLERANCE
    ignore_row_if: Literal["both_values_are_missing", "either_value_is_missing", "neither"] = "neither"

    map_metric: ClassVar[str] = "column_pair_values.sum_to_one"
    success_keys: ClassVar[tuple[str, ...]] = ("column_A", "column_B", "tolerance", "ignore_row_if", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column_A", "column_B")
