"""A blank English spaCy pipeline whose tokenizer knows how mammography reports spell things.

Reports write the same assessment a dozen ways ("BI-RADS 4A", "BIRADS-4", "Bi-Rads: 4", "ACR3",
"density B/C", "between b and c."). spaCy's defaults keep "BIRADS-4", "ACR3" and "4A." glued and
read "c." as an abbreviation. The fixes here are affix rules, not special cases: spaCy applies
special cases that contain punctuation with a phrase matcher and a retokenisation pass over the
whole Doc, which measured 3-8x slower on label sentences — so "BI-RADS" stays three tokens
("bi", "-", "rads") and the entity phrases are tokenised by this same tokenizer to match.
No model is downloaded: ``spacy.blank("en")`` only.
"""

from __future__ import annotations

import re

from spacy.lang.en import English
from spacy.language import Language
from spacy.util import compile_infix_regex, compile_suffix_regex

# a category or density letter glued to its anchor: "BIRADS4", "BIRADS-4", "BI-RADS:4", "ACR3", "ACR-b"
GLUED_VALUE_INFIXES = (
    r"(?<=[Rr][Aa][Dd][Ss])[-:]?(?=[0-6])",
    r"(?<=[Rr][Aa][Dd])[-:]?(?=[0-6])",
    r"(?<=\b[Aa][Cc][Rr])[-:]?(?=[0-6]|[a-dA-D]\b)",
)
# spaCy splits a final "." only after lower-case letters; "BI-RADS 4A." and "B/C." end sentences too
UPPER_FINAL_STOP = r"(?<=[A-Z0-9])\."
# the English exceptions read "c." as an abbreviation; in "between b and c." it is density C
LETTER_EXCEPTIONS_DROPPED = tuple(f"{letter}." for letter in "abcdABCD")
# emoticons made of punctuation and digits (":3", "<3", "=3") would swallow a glued category ("BIRADS :3")
EMOTICON = re.compile(r"[^\w\s]+\d+|\d+[^\w\s]+")


def _kept_exceptions(rules: dict) -> dict:
    return {k: v for k, v in rules.items() if k not in LETTER_EXCEPTIONS_DROPPED and not EMOTICON.fullmatch(k)}


def add_mammography_rules(nlp: Language) -> Language:
    """The same rules on an existing English pipeline's tokenizer (each assignment reloads spaCy's
    ~5,000 special cases; :func:`blank_mammography_nlp` builds the tokenizer once instead)."""
    tokenizer = nlp.tokenizer
    tokenizer.suffix_search = compile_suffix_regex(list(nlp.Defaults.suffixes) + [UPPER_FINAL_STOP]).search
    tokenizer.infix_finditer = compile_infix_regex(list(nlp.Defaults.infixes) + list(GLUED_VALUE_INFIXES)).finditer
    tokenizer.rules = _kept_exceptions(tokenizer.rules)
    return nlp


class _MammographyDefaults(English.Defaults):
    suffixes = list(English.Defaults.suffixes) + [UPPER_FINAL_STOP]
    infixes = list(English.Defaults.infixes) + list(GLUED_VALUE_INFIXES)
    tokenizer_exceptions = _kept_exceptions(English.Defaults.tokenizer_exceptions)


class MammographyEnglish(English):
    """``spacy.blank("en")`` whose tokenizer is built with the mammography rules in one go (setting
    them afterwards reloaded the special cases three times: ~0.3 s CPU per process)."""
    Defaults = _MammographyDefaults


def blank_mammography_nlp() -> Language:
    """``spacy.blank("en")`` with the mammography tokenizer rules, no components yet."""
    return MammographyEnglish()
