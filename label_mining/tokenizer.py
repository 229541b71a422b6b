"""A blank English spaCy pipeline whose tokenizer knows how mammography reports spell things.

Reports write the same assessment a dozen ways ("BI-RADS 4A", "BIRADS-4", "Bi-Rads: 4", "ACR3",
"density B/C"). spaCy's default rules would cut "BI-RADS" into three tokens, keep "BIRADS-4" and
"ACR3" whole and read "c." as an abbreviation; the special cases below give the matcher one token
per concept and one token per category or density letter, so entity rules can stay plain token
patterns (set membership on ``LOWER``), compiled once, with no per-token Python callbacks.
No model is downloaded: ``spacy.blank("en")`` only.
"""

from __future__ import annotations

import spacy
from spacy.attrs import ORTH
from spacy.language import Language
from spacy.util import compile_suffix_regex

# every way the anchor word is written that spaCy would otherwise split or keep glued
BIRADS_SPELLINGS = ("BI-RADS", "BIRADS", "Bi-Rads", "Bi-RADS", "bi-rads", "birads", "Birads", "BiRads",
                    "BI-RAD", "BIRAD", "bi-rad", "birad")
ACR_SPELLINGS = ("ACR", "acr", "Acr")
CATEGORY_VALUES = ("0", "1", "2", "3", "4", "5", "6", "4a", "4b", "4c", "4A", "4B", "4C")
DENSITY_LETTERS = ("a", "b", "c", "d", "A", "B", "C", "D")


def _special_cases() -> dict[str, list[dict]]:
    cases: dict[str, list[dict]] = {}
    for anchor in BIRADS_SPELLINGS:
        if "-" in anchor:
            cases[anchor] = [{ORTH: anchor}]               # keep the hyphenated acronym whole
            cases[anchor + "®"] = [{ORTH: anchor}, {ORTH: "®"}]
        for value in CATEGORY_VALUES:
            cases[f"{anchor}{value}"] = [{ORTH: anchor}, {ORTH: value}]            # "BIRADS4"
            cases[f"{anchor}-{value}"] = [{ORTH: anchor}, {ORTH: "-"}, {ORTH: value}]  # "BIRADS-4"
            cases[f"{anchor}:{value}"] = [{ORTH: anchor}, {ORTH: ":"}, {ORTH: value}]  # "BIRADS:4"
    for anchor in ACR_SPELLINGS:
        for value in CATEGORY_VALUES + DENSITY_LETTERS:
            cases[f"{anchor}{value}"] = [{ORTH: anchor}, {ORTH: value}]            # "ACR3", "ACRb"
            cases[f"{anchor}-{value}"] = [{ORTH: anchor}, {ORTH: "-"}, {ORTH: value}]
    # a single density letter before a full stop is a letter, not an initial ("between b and c.")
    for letter in DENSITY_LETTERS:
        cases[f"{letter}."] = [{ORTH: letter}, {ORTH: "."}]
    return cases


SPECIAL_CASES = _special_cases()


def add_mammography_exceptions(nlp: Language) -> Language:
    # spaCy only splits a final "." after lower-case letters; "BI-RADS 4A." and "B/C." end sentences too
    suffixes = list(nlp.Defaults.suffixes) + [r"(?<=[A-Z0-9])\."]
    nlp.tokenizer.suffix_search = compile_suffix_regex(suffixes).search
    for text, tokens in SPECIAL_CASES.items():
        nlp.tokenizer.add_special_case(text, tokens)
    return nlp


def blank_mammography_nlp() -> Language:
    """``spacy.blank("en")`` with the mammography tokenizer exceptions, no components yet."""
    nlp = spacy.blank("en")
    return add_mammography_exceptions(nlp)
