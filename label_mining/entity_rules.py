"""Token patterns for the things a mammography report states: assessment category, breast
density, laterality and pathology words — compiled once into one spaCy ``Matcher``.

Every pattern is set membership on ``LOWER``/``ORTH`` (no ``REGEX``, no callbacks), so matching is
spaCy's C loop. Turning a match into a value (``"4b"`` -> category 4, sub-category ``4B``;
``"B/C"`` -> density range B–C) happens once per match, not per token.

Clinical conventions encoded here:

* BI-RADS 5th edition final assessment categories 0–6; 4A/4B/4C are sub-divisions of 4, so the
  label is 4 and the sub-category is kept as detail.
* The descriptive phrases of each category ("negative" = 1, "benign" = 2, "probably benign" = 3,
  "suspicious" = 4, "highly suggestive of malignancy" = 5, "known biopsy-proven malignancy" = 6,
  "incomplete" = 0) count only where an assessment is given (impression, addendum, or an
  unheaded report) and only when the breast has no explicit category — "benign-appearing
  calcifications" in the findings is a finding, not a final assessment.
* "ACR" followed by a number is the European (French/Swiss) name of the assessment scale (ACR 1–5);
  sites whose "ACR 1–4" means density set ``acr_number_means: density`` in the policy. "ACR"
  followed by a letter is always density (ACR a–d is the 5th-edition composition scale).
* Density is A–D; 4th-edition numerals 1–4 map to A–D when anchored by a density word.
"""

from __future__ import annotations

from dataclasses import dataclass

ASSESSMENT, DENSITY, LATERALITY, PATHOLOGY = "assessment", "density", "laterality", "pathology"

CATEGORY_TOKENS = {"0": "0", "1": "1", "2": "2", "3": "3", "4": "4", "5": "5", "6": "6",
                   "4a": "4A", "4b": "4B", "4c": "4C", "i": "1", "ii": "2", "iii": "3", "iv": "4",
                   "v": "5", "vi": "6"}
ARABIC_CATEGORIES = [k for k in CATEGORY_TOKENS if k[0].isdigit()]
DENSITY_NUMERALS = {"1": "A", "2": "B", "3": "C", "4": "D"}
DENSITY_LETTERS = ["a", "b", "c", "d"]
RANGE_JOINERS = ["/", "-", "–", "—", "to", "or", "~"]
LIST_JOINERS = [",", "and", "&", "/", "+"]

BIRADS = ["bi-rads", "birads", "bi-rad", "birad"]
CATEGORY_WORDS = ["category", "categories", "cat", "cat.", "class", "classification", "score",
                  "assessment", "grade"]
FILLER = ["category", "cat", "cat.", ":", "-", "=", "(", "assessment", "score", "classification",
          "class", "is", "of", "final", "overall", "grade", "type", "–"]
DENSITY_ANCHORS = ["density", "densities", "composition", "pattern", "parenchyma", "tissue",
                   "acr", "type"]
DENSITY_FILLER = [":", "-", "=", "(", "is", "category", "cat", "type", "acr", "grade", "class",
                  "of", "pattern", "bi-rads", "birads", "breast", "breasts", "classification",
                  "level", "–", "the", "are"]

Pattern = list[dict]


@dataclass(frozen=True)
class EntityRule:
    rule_id: str
    type: str
    patterns: tuple
    descriptive: bool = False          # a descriptive phrase, not an explicit category/letter
    value: str | None = None           # fixed value for word rules; None = parsed from tokens


def _opt(values, n=1) -> Pattern:
    return [{"LOWER": {"IN": list(values)}, "OP": "?"} for _ in range(n)]


def _birads_anchor() -> list[Pattern]:
    return [[{"LOWER": {"IN": BIRADS}}], [{"LOWER": "bi"}, {"LOWER": "-", "OP": "?"}, {"LOWER": {"IN": ["rads", "rad"]}}]]


def _values(first: Pattern, joiners: list[str], second: Pattern) -> list[Pattern]:
    """A value, or two values joined ("3-4" a range, "3, 4b" a list) — two patterns, no optional
    tail, so a match never ends on a dangling joiner ("BI-RADS 5," stays "BI-RADS 5")."""
    return [first, first + [{"LOWER": {"IN": joiners}}] + second]


CATEGORY_VALUES = _values([{"LOWER": {"IN": ARABIC_CATEGORIES}}], sorted(set(RANGE_JOINERS + LIST_JOINERS)),
                          [{"LOWER": {"IN": ARABIC_CATEGORIES}}])


def _rules() -> list[EntityRule]:
    rules = []
    birads_patterns = []
    for anchor in _birads_anchor():
        for value in CATEGORY_VALUES:
            birads_patterns.append(anchor + [{"LOWER": "®", "OP": "?"}] + _opt(FILLER, 3) + value)
        # roman numerals only right after the anchor ("BI-RADS IV"); elsewhere "v"/"i" are words
        birads_patterns.append(anchor + _opt([":", "-", "category", "cat", "cat."], 2)
                               + [{"LOWER": {"IN": ["i", "ii", "iii", "iv", "v", "vi"]}}])
    rules.append(EntityRule("assessment.birads", ASSESSMENT, tuple(birads_patterns)))
    rules.append(EntityRule("assessment.category", ASSESSMENT, tuple(
        [{"LOWER": {"IN": CATEGORY_WORDS}}] + _opt([":", "-", "=", "."], 2) + value for value in CATEGORY_VALUES)))
    rules.append(EntityRule("assessment.acr_number", ASSESSMENT, tuple(
        [{"LOWER": "acr"}] + _opt([":", "-", "category", "cat", "cat.", ".", "score", "classification"], 2) + value
        for value in CATEGORY_VALUES)))
    # density, explicit letter or numeral after a density anchor, optionally a range
    letter = [{"LOWER": {"IN": DENSITY_LETTERS}}]
    rules.append(EntityRule("density.letter", DENSITY, tuple(
        [{"LOWER": {"IN": DENSITY_ANCHORS}}] + _opt(DENSITY_FILLER, 3) + value
        for value in _values(letter, RANGE_JOINERS, letter)) + (
        [{"LOWER": {"IN": DENSITY_ANCHORS}}] + _opt(DENSITY_FILLER, 3)
        + [{"LOWER": "between"}, {"LOWER": {"IN": DENSITY_LETTERS}}, {"LOWER": {"IN": ["and", "&"]}},
           {"LOWER": {"IN": DENSITY_LETTERS}}],)))
    numeral = [{"LOWER": {"IN": list(DENSITY_NUMERALS)}}]
    rules.append(EntityRule("density.numeral", DENSITY, tuple(
        [{"LOWER": {"IN": ["density", "densities", "composition", "pattern", "type"]}}]
        + _opt([":", "-", "=", "(", "is", "category", "cat", "type", "grade", "class", "acr", "of", "level"], 3)
        + value for value in _values(numeral, RANGE_JOINERS, numeral))))
    # 5th-edition composition descriptions
    rules.append(EntityRule("density.fatty", DENSITY, (
        [{"LOWER": {"IN": ["almost", "nearly"]}, "OP": "?"}, {"LOWER": {"IN": ["entirely", "predominantly", "mostly", "completely"]}},
         {"LOWER": {"IN": ["fatty", "fat"]}}],
        [{"LOWER": "fatty"}, {"LOWER": {"IN": ["breast", "breasts", "involution", "replaced", "replacement", "tissue", "parenchyma"]}}],
    ), descriptive=False, value="A"))
    rules.append(EntityRule("density.scattered", DENSITY, (
        [{"LOWER": "scattered"}, {"LOWER": {"IN": ["areas", "area"]}, "OP": "?"}, {"LOWER": "of", "OP": "?"},
         {"LOWER": "fibroglandular"}],
        [{"LOWER": "scattered"}, {"LOWER": "fibro"}, {"LOWER": "-", "OP": "?"}, {"LOWER": "glandular"}],
    ), value="B"))
    rules.append(EntityRule("density.heterogeneous", DENSITY, (
        [{"LOWER": {"IN": ["heterogeneously", "heterogenously", "heterogeneous"]}}, {"LOWER": "dense"}],
    ), value="C"))
    rules.append(EntityRule("density.extreme", DENSITY, (
        [{"LOWER": {"IN": ["extremely", "very"]}}, {"LOWER": "dense"}],
    ), value="D"))
    # descriptive assessment phrases (see module docstring for where they count)
    rules.append(EntityRule("assessment.word_negative", ASSESSMENT, (
        [{"LOWER": "negative"}, {"LOWER": {"IN": ["mammogram", "mammography", "study", "examination", "exam", "screening", "result"]}, "OP": "?"}],
        [{"LOWER": {"IN": ["normal"]}}, {"LOWER": {"IN": ["mammogram", "mammography", "study", "examination", "exam"]}}],
    ), descriptive=True, value="1"))
    rules.append(EntityRule("assessment.word_benign", ASSESSMENT, (
        [{"LOWER": "benign"}],
    ), descriptive=True, value="2"))
    rules.append(EntityRule("assessment.word_probably_benign", ASSESSMENT, (
        [{"LOWER": "probably"}, {"LOWER": "benign"}],
    ), descriptive=True, value="3"))
    rules.append(EntityRule("assessment.word_suspicious", ASSESSMENT, (
        [{"LOWER": "suspicious"}, {"LOWER": {"IN": ["abnormality", "finding", "findings", "lesion"]}, "OP": "?"}],
    ), descriptive=True, value="4"))
    rules.append(EntityRule("assessment.word_highly_suggestive", ASSESSMENT, (
        [{"LOWER": "highly"}, {"LOWER": "suggestive"}, {"LOWER": "of"}, {"LOWER": {"IN": ["malignancy", "malignant", "cancer", "carcinoma"]}}],
    ), descriptive=True, value="5"))
    rules.append(EntityRule("assessment.word_incomplete", ASSESSMENT, (
        [{"LOWER": "incomplete"}],
        [{"LOWER": {"IN": ["needs", "need", "requires"]}}, {"LOWER": "additional"}, {"LOWER": "imaging"}],
    ), descriptive=True, value="0"))
    # known cancer: BI-RADS 6 even without the number
    rules.append(EntityRule("assessment.known_malignancy", ASSESSMENT, (
        [{"LOWER": "known", "OP": "?"}, {"LOWER": "biopsy"}, {"LOWER": "-", "OP": "?"}, {"LOWER": "proven"},
         {"LOWER": {"IN": ["malignancy", "cancer", "carcinoma", "malignant"]}}],
        [{"LOWER": {"IN": ["known", "proven", "confirmed"]}}, {"LOWER": {"IN": ["malignancy", "cancer", "carcinoma"]}}],
    ), value="6"))
    rules.append(EntityRule("laterality.word", LATERALITY, (
        [{"LOWER": {"IN": ["right", "left", "bilateral", "bilaterally", "rt", "lt",
                           "droit", "droite", "gauche", "rechts", "links", "beidseits", "bilatéral"]}}],
        [{"ORTH": {"IN": ["R", "L", "R.", "L.", "RT", "LT"]}}],
        [{"LOWER": "both"}, {"LOWER": {"IN": ["breasts", "sides"]}}],
    )))
    rules.append(EntityRule("pathology.malignant", PATHOLOGY, (
        [{"LOWER": {"IN": ["malignancy", "malignant", "carcinoma", "cancer", "dcis", "idc", "ilc"]}}],
    ), value="malignant"))
    rules.append(EntityRule("pathology.benign", PATHOLOGY, (
        [{"LOWER": {"IN": ["fibroadenoma", "fibroadenomas", "papilloma", "fibrocystic", "lipoma", "hamartoma"]}}],
    ), value="benign"))
    return rules


ENTITY_RULES: tuple[EntityRule, ...] = tuple(_rules())
RULES_BY_ID = {r.rule_id: r for r in ENTITY_RULES}

# types decided by one sentence-level pass; the priority breaks overlaps between rules
_PRIORITY = {ASSESSMENT: 3, DENSITY: 3, PATHOLOGY: 1, LATERALITY: 0}

LATERALITY_WORDS = {"right": "R", "rt": "R", "r": "R", "r.": "R", "left": "L", "lt": "L", "l": "L", "l.": "L",
                    "bilateral": "B", "bilaterally": "B", "both": "B", "both breasts": "B", "both sides": "B",
                    "droit": "R", "droite": "R", "rechts": "R", "gauche": "L", "links": "L",
                    "beidseits": "B", "bilatéral": "B"}


def priority(rule: EntityRule) -> int:
    return _PRIORITY[rule.type]


def parse_assessment(lowers: list[str], rule: EntityRule) -> tuple[list[str], bool]:
    """Category values named by a match and whether they form a range ("3-4").

    ``["bi-rads", ":", "3", ",", "4b"]`` -> (["3", "4B"], False); ``["birads", "3", "-", "4"]`` -> (["3", "4"], True).
    """
    if rule.value is not None:
        return [rule.value], False
    values, is_range = [], False
    started = False
    for i, tok in enumerate(lowers):
        if i == 0:
            continue  # the anchor itself ("acr", "category", "bi-rads")
        if tok in CATEGORY_TOKENS and (tok[0].isdigit() or not started):
            values.append(CATEGORY_TOKENS[tok])
            started = True
        elif started and tok in RANGE_JOINERS and tok not in (",", "and", "&", "+"):
            is_range = tok in ("-", "–", "—", "to", "or", "~")
    return values, is_range and len(values) == 2


def parse_density(lowers: list[str], rule: EntityRule) -> tuple[list[str], bool]:
    """Density letters named by a match and whether they form a range ("B/C", "between b and c")."""
    if rule.value is not None:
        return [rule.value], False
    values = []
    for i, tok in enumerate(lowers):
        if i == 0:
            continue
        if rule.rule_id == "density.letter" and tok in DENSITY_LETTERS:
            values.append(tok.upper())
        elif rule.rule_id == "density.numeral" and tok in DENSITY_NUMERALS:
            values.append(DENSITY_NUMERALS[tok])
    return values, len(values) >= 2
