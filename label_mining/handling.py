"""CheXpert-style alternatives to uncertainty weighting, per task, chosen in the policy.

Irvin et al. (CheXpert, 2019) compared U-Ignore, U-Zeros and U-Ones for uncertain labels; the
paper weights them instead (w = 1 - u). ``handling`` lets a scientist run both from the same
mined labels: ``weight`` keeps u; ``ignore`` drops labels with u > ``uncertain_above``; ``zeros`` /
``ones`` (breastbin only) turn them into a certain 0 / 1.

:func:`is_ignored` is the one meaning of "ignore" in the project: label mining applies it to one
record here, and the training-time policies (:mod:`label_mining.training_policies`) apply the same
predicate to manifest columns.
"""

from __future__ import annotations

import numpy as np

from label_mining.label_record import LabelRecord
from label_mining.uncertainty_policy import UncertaintyPolicy

IGNORED_REASON = "uncertain_label_ignored_by_policy"


def is_ignored(present, u, uncertain_above: float = 0.0):
    """True where a present label is too uncertain to train on (u > ``uncertain_above``).

    Works on scalars and on arrays alike; a missing label is never "ignored" (it is already missing).
    """
    return np.logical_and(present, np.asarray(u, dtype=float) > uncertain_above)


def apply_handling(record: LabelRecord, policy: UncertaintyPolicy) -> LabelRecord:
    how = policy.handling_of(record.task)
    if how == "weight" or not is_ignored(record.label is not None, record.u, policy.uncertain_above):
        return record
    if how == "ignore":
        return record.with_(label=None, u=1.0, missing_reason=IGNORED_REASON,
                            rule_id=record.rule_id + "+u_ignore")
    value = "0" if how == "zeros" else "1"
    return record.with_(label=value, u=0.0, rule_id=record.rule_id + f"+u_{how}")
