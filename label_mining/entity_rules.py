"""What a mammography report states — assessment category, breast density, laterality, pathology
words — as spaCy phrase rules plus two small value grammars.

Design for speed: spaCy's ``Matcher`` evaluates ``{"IN": [...]}`` predicates as Python calls per
token and pattern, which costs more than tokenising. So every rule here is an exact phrase
(``PhraseMatcher`` on ``LOWER``: hashing in C). Explicit categories and letters start at an
*anchor* phrase ("BI-RADS", "category", "ACR", "density", "composition", "type"); a bounded
grammar then reads at most a few tokens forward (fillers, a value, an optional joined second
value) with set look-ups — work per anchor found, not per token.

Clinical conventions encoded here:

* BI-RADS 5th edition final assessment categories 0–6; 4A/4B/4C are sub-divisions of 4, so the
  label is 4 and the sub-category is kept as detail. "3-4" is a range (the reader hesitates),
  "3, 4b" a list (several findings; the breast's assessment is the highest).
* The descriptive phrases of each category ("negative" = 1, "benign" = 2, "probably benign" = 3,
  "suspicious" = 4, "highly suggestive of malignancy" = 5, "known biopsy-proven malignancy" = 6,
  "incomplete" = 0) count only where a final assessment is written and only when the breast has
  no explicit category (see :mod:`label_mining.aggregate`).
* "ACR" + number is the European (French/Swiss) name of the assessment scale (ACR 1–5); sites whose
  "ACR 1–4" means density set ``parser.acr_number_means: density`` in the policy. "ACR" + letter is
  always density (ACR a–d, 5th-edition composition).
* Density is A–D; 4th-edition numerals 1–4 map to A–D when a density word anchors them
  ("density 2", "type 2", "density ACR 3").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

ASSESSMENT, DENSITY, LATERALITY, PATHOLOGY = "assessment", "density", "laterality", "pathology"

CATEGORY_TOKENS = {"0": "0", "1": "1", "2": "2", "3": "3", "4": "4", "5": "5", "6": "6",
                   "4a": "4A", "4b": "4B", "4c": "4C"}
ROMAN_CATEGORIES = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6"}
DENSITY_NUMERALS = {"1": "A", "2": "B", "3": "C", "4": "D"}
DENSITY_LETTERS = {"a": "A", "b": "B", "c": "C", "d": "D"}
# 4th-edition density was often written in Roman numerals ("ACR II", "Density: ACR IV")
DENSITY_ROMAN = {"i": "A", "ii": "B", "iii": "C", "iv": "D"}
# words that make a number after them a density grade, whatever the anchor ("ACR-Typ 3", "ACR type 2")
DENSITY_SCALE_WORDS = frozenset({"density", "densities", "composition", "type", "typ", "typ.", "pattern"})
RANGE_JOINERS = frozenset({"-", "–", "—", "/", "to", "or", "~"})
LIST_JOINERS = frozenset({",", "and", "&", "+"})
CATEGORY_FILLER = frozenset({"category", "categories", "cat", "cat.", ":", "-", "=", "(", ".", "assessment",
                             "score", "classification", "class", "is", "of", "final", "overall", "grade", "–", "®"})
DENSITY_FILLER = frozenset({":", "-", "=", "(", "is", "category", "cat", "type", "acr", "grade", "class", "of",
                            "pattern", "bi-rads", "birads", "breast", "breasts", "classification", "level", "–",
                            "the", "are", "composition", "density", "typ", "typ."})
# a second listed value followed by one of these is a count or a size, not a category ("BI-RADS 4, 2 mm")
NOT_AFTER_SECOND_VALUE = frozenset({"mm", "cm", "o'clock", "o", "clock", "%", "months", "month", "years", "year",
                                    "weeks", "week", "x", "lesions", "masses", "views", "images", "days", "lesion",
                                    "mass", "finding", "findings", "nodule", "nodules", "calcifications"})
# "density" is also a finding: "focal asymmetric density", "high density mass", "increased density",
# "a 12 mm density". After one of these words a density anchor is the finding, not breast composition —
# it yields no density label and does not swallow the assessment after it ("asymmetric density: category 3")
FINDING_DENSITY_WORDS = frozenset({
    "asymmetric", "asymmetrical", "asymmetry", "focal", "increased", "increasing", "high", "higher", "low", "lower",
    "equal", "iso", "new", "developing", "nodular", "round", "rounded", "oval", "irregular", "spiculated",
    "stellate", "soft", "water", "fat", "mixed", "architectural", "ill-defined", "circumscribed", "persistent",
    "residual", "palpable", "mass", "masslike", "mass-like", "calcified", "a", "an", "one", "small", "large",
    "this", "that", "another", "dominant", "subtle", "vague", "questionable", "retroareolar", "subareolar",
    "linear", "tubular", "mm", "cm", "focally", "slightly", "markedly", "additional", "second", "tissue"})
FINDING_DENSITY_ANCHORS = frozenset({"density", "densities"})
# "composition is a heterogeneously dense pattern": the article "a" is not density A
A_MAY_PRECEDE = frozenset({"and", "or", "to", "right", "left", "bilaterally", "bilateral", "breast", "breasts",
                           "on", "in", "both", "for", "with"})

LATERALITY_WORDS = {"right": "R", "rt": "R", "r": "R", "r.": "R", "left": "L", "lt": "L", "l": "L", "l.": "L",
                    "bilateral": "B", "bilaterally": "B", "both breasts": "B", "both sides": "B",
                    "droit": "R", "droite": "R", "rechts": "R", "gauche": "L", "links": "L",
                    "beidseits": "B", "bilatéral": "B", "bilatérale": "B"}

Reader = Callable[[list[str], int, int], "tuple[int, tuple[str, ...], bool] | None"]


@dataclass(frozen=True)
class EntityRule:
    rule_id: str
    type: str
    phrases: tuple[str, ...]           # trigger phrases, matched case-insensitively on whole tokens
    value: str | None = None           # fixed value for phrase rules
    descriptive: bool = False          # a descriptive phrase, not an explicit category/letter
    reader: Reader | None = None       # grammar reading the value after an anchor
    case_sensitive: bool = False       # "R"/"L" as sides only in capitals
    # anchors (first token) that are not this entity right after one of the words
    not_after: tuple[frozenset[str], frozenset[str]] | None = None


# ---------------------------------------------------------------------------------------------
# value grammars: (lowers, anchor_start, anchor_end) -> (match_end, values, is_range) | None
def _second_value(lowers: list[str], i: int, table: dict) -> tuple[int, str, bool] | None:
    """After a value at i-1: a joiner and a second value -> (end, value, is_range)."""
    n = len(lowers)
    if i + 1 < n and lowers[i] in (RANGE_JOINERS | LIST_JOINERS) and lowers[i + 1] in table:
        if i + 2 < n and lowers[i + 2] in NOT_AFTER_SECOND_VALUE:
            return None
        return i + 2, table[lowers[i + 1]], lowers[i] in RANGE_JOINERS
    if i + 2 < n and lowers[i] == "between":
        return None
    return None


def read_category(lowers: list[str], start: int, end: int):
    n, i, skipped = len(lowers), end, 0
    if end < n and lowers[end] in ROMAN_CATEGORIES:
        # "BI-RADS IV" right after the anchor; but "ACR II" is the 4th-edition density grade
        if lowers[start] == "acr":
            return None
        return end + 1, (ROMAN_CATEGORIES[lowers[end]],), False
    while i < n and lowers[i] in CATEGORY_FILLER and skipped < 3:
        i += 1
        skipped += 1
    if i >= n or lowers[i] not in CATEGORY_TOKENS:
        return None
    if i + 1 < n and lowers[i + 1] in NOT_AFTER_SECOND_VALUE:
        return None                                          # "category 2 mm" is not a category
    first = CATEGORY_TOKENS[lowers[i]]
    more = _second_value(lowers, i + 1, CATEGORY_TOKENS)
    if more:
        return more[0], (first, more[1]), more[2]
    return i + 1, (first,), False


def read_density(lowers: list[str], start: int, end: int):
    n, i, skipped = len(lowers), end, 0
    scale_named = lowers[start] in DENSITY_SCALE_WORDS or lowers[end - 1] in DENSITY_SCALE_WORDS
    while i < n and lowers[i] in DENSITY_FILLER and skipped < 3:
        scale_named = scale_named or lowers[i] in DENSITY_SCALE_WORDS
        i += 1
        skipped += 1
    if i >= n:
        return None
    tok = lowers[i]
    if tok in DENSITY_ROMAN and (scale_named or lowers[start] == "acr"):
        more = _second_value(lowers, i + 1, DENSITY_ROMAN)
        if more and more[2]:
            return more[0], (DENSITY_ROMAN[tok], more[1]), True
        return i + 1, (DENSITY_ROMAN[tok],), False
    if tok == "between" and i + 3 < n and lowers[i + 1] in DENSITY_LETTERS and lowers[i + 2] in ("and", "&") \
            and lowers[i + 3] in DENSITY_LETTERS:
        return i + 4, (DENSITY_LETTERS[lowers[i + 1]], DENSITY_LETTERS[lowers[i + 3]]), True
    if tok in DENSITY_LETTERS:
        nxt = lowers[i + 1] if i + 1 < n else ""
        if tok == "a" and nxt.isalpha() and len(nxt) > 1 and nxt not in A_MAY_PRECEDE:
            return None
        more = _second_value(lowers, i + 1, DENSITY_LETTERS)
        if more and more[2]:
            return more[0], (DENSITY_LETTERS[tok], more[1]), True
        return i + 1, (DENSITY_LETTERS[tok],), False
    # numerals need a word that can only mean density ("ACR 3" alone is the assessment scale)
    if tok in DENSITY_NUMERALS and scale_named and not (i + 1 < n and lowers[i + 1] in NOT_AFTER_SECOND_VALUE):
        more = _second_value(lowers, i + 1, DENSITY_NUMERALS)
        if more and more[2]:
            return more[0], (DENSITY_NUMERALS[tok], more[1]), True
        return i + 1, (DENSITY_NUMERALS[tok],), False
    return None


SIDE_DENSITY_FILLER = frozenset({":", "breast", "-", "=", "acr", "density", "type", "is", "("})


def read_side_density(lowers: list[str], start: int, end: int):
    """"right breast C", "left: b", "R ACR D" — a density letter right after a side (the parser keeps
    it only in a composition section or a sentence about density)."""
    n, i, skipped = len(lowers), end, 0
    while i < n and lowers[i] in SIDE_DENSITY_FILLER and skipped < 3:
        i += 1
        skipped += 1
    if i >= n or lowers[i] not in DENSITY_LETTERS:
        return None
    nxt = lowers[i + 1] if i + 1 < n else ""
    if nxt.isalnum() and nxt not in A_MAY_PRECEDE:
        return None   # "left breast: a 12 mm mass" is an article
    return i + 1, (DENSITY_LETTERS[lowers[i]],), False


# ---------------------------------------------------------------------------------------------
BIRADS_SPELLINGS = ("bi-rads", "birads", "bi-rad", "birad", "bi rads", "bi - rads", "bi-rads®", "birads®")

ENTITY_RULES: tuple[EntityRule, ...] = (
    EntityRule("assessment.birads", ASSESSMENT, BIRADS_SPELLINGS, reader=read_category),
    EntityRule("assessment.category", ASSESSMENT, ("category", "cat", "cat.", "assessment category",
                                                   "final assessment"), reader=read_category),
    EntityRule("assessment.acr_number", ASSESSMENT, ("acr",), reader=read_category),
    EntityRule("density.explicit", DENSITY, ("density", "densities", "composition", "pattern", "parenchyma",
                                           "tissue", "acr", "type", "breast density", "acr density"),
               reader=read_density, not_after=(FINDING_DENSITY_ANCHORS, FINDING_DENSITY_WORDS)),
    EntityRule("density.side_letter", DENSITY, ("right", "left", "right breast", "left breast", "rt", "lt",
                                                "r", "l"), reader=read_side_density),
    # 5th-edition composition descriptions
    EntityRule("density.fatty", DENSITY, ("almost entirely fatty", "entirely fatty", "predominantly fatty",
                                          "mostly fatty", "completely fatty", "nearly entirely fatty",
                                          "fatty breasts", "fatty breast", "fatty involution",
                                          "fatty replaced", "fatty replacement", "predominantly fat"), value="A"),
    EntityRule("density.scattered", DENSITY, ("scattered fibroglandular", "scattered areas of fibroglandular",
                                              "scattered area of fibroglandular", "scattered fibro-glandular",
                                              "scattered fibro glandular"), value="B"),
    EntityRule("density.heterogeneous", DENSITY, ("heterogeneously dense", "heterogenously dense",
                                                  "heterogeneous dense"), value="C"),
    EntityRule("density.extreme", DENSITY, ("extremely dense", "very dense"), value="D"),
    # descriptive final-assessment phrases
    EntityRule("assessment.word_negative", ASSESSMENT, ("negative", "negative mammogram", "negative study",
                                                        "negative examination", "negative exam",
                                                        "normal mammogram", "normal study", "normal examination"),
               value="1", descriptive=True),
    EntityRule("assessment.word_benign", ASSESSMENT, ("benign",), value="2", descriptive=True),
    EntityRule("assessment.word_probably_benign", ASSESSMENT, ("probably benign",), value="3", descriptive=True),
    EntityRule("assessment.word_suspicious", ASSESSMENT, ("suspicious", "suspicious abnormality",
                                                          "suspicious finding", "suspicious findings",
                                                          "suspicious lesion"), value="4", descriptive=True),
    EntityRule("assessment.word_highly_suggestive", ASSESSMENT, (
        "highly suggestive of malignancy", "highly suggestive of cancer", "highly suggestive of carcinoma",
        "highly suspicious of malignancy", "highly suspicious for malignancy"), value="5", descriptive=True),
    EntityRule("assessment.word_incomplete", ASSESSMENT, ("incomplete", "needs additional imaging",
                                                          "need additional imaging", "requires additional imaging"),
               value="0", descriptive=True),
    EntityRule("assessment.known_malignancy", ASSESSMENT, (
        "known biopsy-proven malignancy", "known biopsy proven malignancy", "biopsy-proven malignancy",
        "biopsy proven malignancy", "biopsy-proven carcinoma", "biopsy-proven cancer", "known biopsy-proven cancer",
        "known malignancy", "known cancer", "known carcinoma", "proven malignancy", "confirmed malignancy"),
        value="6"),
    EntityRule("laterality.word", LATERALITY, tuple(k for k in LATERALITY_WORDS if k not in ("r", "l", "r.", "l."))),
    EntityRule("laterality.letter", LATERALITY, ("R", "L", "R.", "L."), case_sensitive=True),
    # lower-case text: "r: bi-rads 2, l: bi-rads 4" (a lone "l" elsewhere may be a litre or a list item)
    EntityRule("laterality.letter_colon", LATERALITY, ("r:", "l:")),
    EntityRule("pathology.malignant", PATHOLOGY, ("malignancy", "malignant", "carcinoma", "cancer", "dcis",
                                                  "idc", "ilc"), value="malignant"),
    EntityRule("pathology.benign", PATHOLOGY, ("fibroadenoma", "fibroadenomas", "papilloma", "fibrocystic",
                                               "lipoma", "hamartoma"), value="benign"),
)
RULES_BY_ID = {r.rule_id: r for r in ENTITY_RULES}

# overlaps: the longer span wins; on equal length an assessment or density beats a pathology word
_PRIORITY = {ASSESSMENT: 3, DENSITY: 3, PATHOLOGY: 1, LATERALITY: 0}


def priority(rule: EntityRule) -> int:
    return _PRIORITY[rule.type]
