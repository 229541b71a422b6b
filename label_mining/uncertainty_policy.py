"""The uncertainty policy: a versioned YAML file mapping evidence to u, validated on load.

A bad field fails fast with its path ("terms.hedge: Input should be less than or equal to 1"),
never halfway through a run. :func:`combine` is the one documented combination rule (noisy-OR).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_POLICY_PATH = Path(__file__).with_name("policies") / "default.yaml"

U = Field(ge=0.0, le=1.0)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParserPolicy(_Strict):
    acr_number_means: Literal["assessment", "density"] = "assessment"
    carry_laterality_within_section: bool = True
    density_range_pick: Literal["higher", "lower"] = "higher"
    max_chars: int = Field(default=100_000, ge=1_000)
    max_label_sentences: int = Field(default=200, ge=1)


class Terms(_Strict):
    range: float = U
    hedge: float = U
    descriptive_only: float = U
    conflict: float = U
    addendum_revision: float = U
    source_disagreement: float = U
    multiple_readers_disagree: float = U
    laterality_conflict: float = U
    reader_level: dict[str, float]

    @model_validator(mode="after")
    def _levels(self) -> "Terms":
        if "unknown" not in self.reader_level:
            raise ValueError("terms.reader_level needs an 'unknown' entry (used when reader_level is empty)")
        for level, u in self.reader_level.items():
            if not 0.0 <= u <= 1.0:
                raise ValueError(f"terms.reader_level.{level} must be in [0, 1], got {u}")
        return self


class Sources(_Strict):
    biopsy: float = U
    surgery: float = U
    follow_up: float = U
    review: float = U
    structured: float = U
    report: float = U


class MalignancyPolicy(_Strict):
    follow_up_months: int = Field(default=24, ge=1)
    pathology_window_days: int = Field(default=180, ge=0)
    derived_u: float = U
    high_risk_label: Literal["0", "1"] | None = "0"
    high_risk_u: float = U
    discordance_u: float = U


class DatePolicy(_Strict):
    # the site's locale: is 05/04/2024 the 5th of April (day_first) or the 4th of May (month_first)?
    # Required, never guessed (see label_mining/dates.py)
    order: Literal["day_first", "month_first"]


class ViewPolicy(_Strict):
    source_u: dict[str, float]
    conflict: float = U
    variant_u: float = U


Handling = Literal["weight", "ignore", "zeros", "ones"]


class UncertaintyPolicy(_Strict):
    name: str
    version: str
    parser: ParserPolicy = ParserPolicy()
    terms: Terms
    sources: Sources
    malignancy: MalignancyPolicy
    dates: DatePolicy
    view: ViewPolicy
    handling: dict[Literal["breastbin", "acr", "density", "view"], Handling]
    uncertain_above: float = Field(default=0.0, ge=0.0, lt=1.0)
    fingerprint: str = ""

    @model_validator(mode="after")
    def _handling(self) -> "UncertaintyPolicy":
        for task, how in self.handling.items():
            if how in ("zeros", "ones") and task != "breastbin":
                raise ValueError(f"handling.{task}: '{how}' only makes sense for the binary task breastbin; "
                                 f"use 'weight' or 'ignore' for {task}")
        return self

    @property
    def policy_version(self) -> str:
        """``"default@1.0.0+3fa2c1d0"``: name, declared version and a hash of the content."""
        return f"{self.name}@{self.version}+{self.fingerprint}"

    def handling_of(self, task: str) -> str:
        return self.handling.get(task, "weight")

    def reader_u(self, level: str | None) -> float:
        key = (level or "").strip().lower() or "unknown"
        return self.terms.reader_level.get(key, self.terms.reader_level["unknown"])


def load_policy(path: str | Path | None = None) -> UncertaintyPolicy:
    path = Path(path) if path else DEFAULT_POLICY_PATH
    if not path.is_file():
        raise FileNotFoundError(f"uncertainty policy not found: {path}")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"uncertainty policy {path} must be a YAML mapping")
    canonical = json.dumps(raw, sort_keys=True, default=str).encode("utf-8")
    raw["fingerprint"] = hashlib.sha256(canonical).hexdigest()[:8]
    try:
        return UncertaintyPolicy.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(f"invalid uncertainty policy {path}:\n{exc}") from exc


def combine(*terms: float) -> float:
    """Noisy-OR: ``u = 1 - prod(1 - u_i)`` over the terms that apply; 0 when none do."""
    keep = 1.0
    for u in terms:
        keep *= 1.0 - min(1.0, max(0.0, float(u)))
    return round(1.0 - keep, 6)
