"""CheXpert-style alternatives to uncertainty weighting, per task, chosen in the policy.

Irvin et al. (CheXpert, 2019) compared U-Ignore, U-Zeros and U-Ones for uncertain labels; the
paper weights them instead (w = 1 - u). ``handling`` lets a scientist run both from the same
mined labels: ``weight`` keeps u; ``ignore`` drops labels with u > ``uncertain_above``; ``zeros`` /
``ones`` (breastbin only) turn them into a certain 0 / 1.
"""

from __future__ import annotations

from label_mining.label_record import LabelRecord
from label_mining.uncertainty_policy import UncertaintyPolicy


def apply_handling(record: LabelRecord, policy: UncertaintyPolicy) -> LabelRecord:
    how = policy.handling_of(record.task)
    if how == "weight" or record.label is None or record.u <= policy.uncertain_above:
        return record
    if how == "ignore":
        return record.with_(label=None, u=1.0, missing_reason="uncertain_label_ignored_by_policy",
                            rule_id=record.rule_id + "+u_ignore")
    value = "0" if how == "zeros" else "1"
    return record.with_(label=value, u=0.0, rule_id=record.rule_id + f"+u_{how}")
