"""A ConText-style modifier component (negation, hedge, historical, hypothetical) of our own.

medspaCy's ConText cannot be installed beside spaCy 3.8 on Python 3.11, so this re-implements the
algorithm of Chapman et al. (ConText, 2007/2009) on a spaCy ``Matcher``:

* triggers come from ``rules/context_rules.yaml`` (users extend the file, not the code);
* a trigger's scope runs FORWARD to the end of the sentence, BACKWARD to its start, or both
  (BIDIRECTIONAL), stopped early by a TERMINATE trigger or ``max_scope`` tokens;
* a PSEUDO trigger ("probably benign", "no change") swallows the triggers inside it;
* a trigger never modifies an entity it overlaps ("negative" the BI-RADS 1 word is not negated
  by the "negative for" trigger that shares its token);
* whole sections can carry a modifier (everything under "Comparison:" is HISTORICAL).

The component writes ``doc.user_data["context"] = {(start, end): frozenset(modifiers)}`` for the
entities in ``doc.ents``; ``Span._.modifiers`` reads it.
"""

from __future__ import annotations

import bisect
from operator import itemgetter
from pathlib import Path
from typing import Literal, NamedTuple

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc, Span

_START_END = itemgetter(1, 2)    # of a matcher's (key, start, end)
DEFAULT_RULES_PATH = Path(__file__).with_name("rules") / "context_rules.yaml"

# the names written to report_mentions.modifiers
MODIFIER_NAMES = {"NEGATED_EXISTENCE": "negated", "POSSIBLE_EXISTENCE": "uncertain",
                  "HISTORICAL": "historical", "HYPOTHETICAL": "hypothetical"}
Category = Literal["NEGATED_EXISTENCE", "POSSIBLE_EXISTENCE", "HISTORICAL", "HYPOTHETICAL", "PSEUDO", "TERMINATE"]
Direction = Literal["FORWARD", "BACKWARD", "BIDIRECTIONAL", "TERMINATE", "PSEUDO"]


class ContextRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    literal: str | None = None
    pattern: list[dict] | None = None
    category: Category
    direction: Direction
    max_scope: int | None = Field(default=None, ge=1)
    applies_to: list[Literal["assessment", "density", "pathology"]] | None = None

    @model_validator(mode="after")
    def _one_trigger(self) -> "ContextRule":
        if (self.literal is None) == (self.pattern is None):
            raise ValueError("a context rule needs exactly one of 'literal' or 'pattern'")
        if self.literal is not None and not self.literal.strip():
            raise ValueError("'literal' must not be blank")
        if (self.category in ("PSEUDO", "TERMINATE")) != (self.direction in ("PSEUDO", "TERMINATE")):
            raise ValueError(f"category {self.category} needs direction {self.category}, got {self.direction}")
        return self

    @property
    def name(self) -> str:
        return self.literal if self.literal is not None else str(self.pattern)


class ContextRuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int
    section_modifiers: dict[str, Literal["NEGATED_EXISTENCE", "POSSIBLE_EXISTENCE", "HISTORICAL", "HYPOTHETICAL"]] = {}
    rules: list[ContextRule]


def load_context_rules(path: str | Path | None = None) -> ContextRuleSet:
    path = Path(path) if path else DEFAULT_RULES_PATH
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"context rules file not found: {path}") from exc
    try:
        return ContextRuleSet.model_validate(raw)
    except Exception as exc:  # pydantic names the bad rule index and field
        raise ValueError(f"invalid context rules in {path}: {exc}") from exc


class _Trigger(NamedTuple):
    start: int
    end: int
    rule: ContextRule


def compile_rules(nlp: Language, ruleset: ContextRuleSet) -> tuple[PhraseMatcher, Matcher, list[ContextRule]]:
    """One key per rule (``ctx<index>``): literals go to a ``PhraseMatcher`` on ``LOWER`` (hashing in
    C), tokenised by this very tokenizer so "s/p" or "cannot" split the same way in rule and report;
    token patterns go to a ``Matcher``."""
    phrases = PhraseMatcher(nlp.vocab, attr="LOWER")
    patterns = Matcher(nlp.vocab, validate=True)
    for i, rule in enumerate(ruleset.rules):
        if rule.literal is not None:
            phrases.add(f"ctx{i}", [nlp.make_doc(rule.literal)])
            continue
        try:
            patterns.add(f"ctx{i}", [rule.pattern])
        except Exception as exc:
            raise ValueError(f"context rule #{i} ({rule.name}) has an invalid spaCy pattern: {exc}") from exc
    return phrases, patterns, list(ruleset.rules)


def resolve_modifiers(n_tokens: int, triggers: list[_Trigger], entities: list[tuple[int, int, str]],
                      section_modifier: str | None = None) -> list[frozenset[str]]:
    """ConText scope resolution; ``entities`` are (start, end, type) token spans of one sentence."""
    # a trigger inside a longer one is part of it ("not" in "cannot exclude"), and a PSEUDO trigger
    # swallows what it contains ("probably" in "probably benign")
    triggers = [t for t in triggers if not any(o is not t and o.start <= t.start and t.end <= o.end
                                               and (o.end - o.start) > (t.end - t.start) for o in triggers)]
    active = [t for t in triggers if t.rule.category != "PSEUDO"]
    terminators = sorted(t.start for t in active if t.rule.category == "TERMINATE")
    modifiers = [t for t in active if t.rule.category != "TERMINATE"]
    result = []
    for e_start, e_end, e_type in entities:
        found = set()
        if section_modifier:
            found.add(MODIFIER_NAMES[section_modifier])
        for t in modifiers:
            if t.start < e_end and e_start < t.end:
                continue  # never modify the entity the trigger is part of
            if t.rule.applies_to is not None and e_type not in t.rule.applies_to:
                continue
            reach = t.rule.max_scope or n_tokens
            d = t.rule.direction
            if d in ("FORWARD", "BIDIRECTIONAL") and e_start >= t.end:
                stop = min([x for x in terminators if x >= t.end] + [n_tokens, t.end + reach])
                if e_start < stop:
                    found.add(MODIFIER_NAMES[t.rule.category])
            if d in ("BACKWARD", "BIDIRECTIONAL") and e_end <= t.start:
                begin = max([x + 1 for x in terminators if x < t.start] + [0, t.start - reach])
                if e_end > begin:
                    found.add(MODIFIER_NAMES[t.rule.category])
        result.append(frozenset(found))
    return result


class ContextComponent:
    """spaCy pipeline component ``mammo_context`` (after ``mammo_entities``; sentence-aware)."""

    def __init__(self, nlp: Language, rules_path: str | None = None):
        self.ruleset = load_context_rules(rules_path)
        self.phrases, self.patterns, self.rules = compile_rules(nlp, self.ruleset)
        self._key_to_rule = {nlp.vocab.strings[f"ctx{i}"]: r for i, r in enumerate(self.rules)}

    def triggers(self, doc: Doc) -> list[_Trigger]:
        found = self.phrases(doc)
        if len(self.patterns):
            found += self.patterns(doc)
        found.sort(key=_START_END)        # stable: same order as sorting the triggers by (start, end)
        rule_of = self._key_to_rule
        return [_Trigger(s, e, rule_of[k]) for k, s, e in found]

    def __call__(self, doc: Doc) -> Doc:
        context: dict = {}
        doc.user_data["context"] = context
        ents = [(s, e, t) for s, e, _, t, _, _ in doc.user_data.get("entities", ()) if t != "laterality"]
        if not ents:
            return doc
        bounds = doc.user_data.get("sentences") or [(0, len(doc), doc.user_data.get("section"))]
        starts = [b[0] for b in bounds]
        by_sentence: dict[int, tuple[list, list]] = {}
        for ent in ents:
            by_sentence.setdefault(bisect.bisect_right(starts, ent[0]) - 1, ([], []))[0].append(ent)
        for trig in self.triggers(doc):
            k = bisect.bisect_right(starts, trig.start) - 1
            if k in by_sentence:
                by_sentence[k][1].append(trig)
        for k, (sent_ents, trigs) in by_sentence.items():
            s0, s1, section = bounds[k]
            local_ents = [(s - s0, e - s0, t) for s, e, t in sent_ents]
            local_trigs = [_Trigger(t.start - s0, t.end - s0, t.rule) for t in trigs if t.end <= s1]
            mods = resolve_modifiers(s1 - s0, local_trigs, local_ents,
                                     self.ruleset.section_modifiers.get(section) if section else None)
            for (s, e, _), m in zip(sent_ents, mods):
                context[(s, e)] = m
        return doc


if not Span.has_extension("modifiers"):
    Span.set_extension("modifiers", getter=lambda span: span.doc.user_data.get("context", {})
                       .get((span.start, span.end), frozenset()))


@Language.factory("mammo_context", default_config={"rules_path": None})
def make_context_component(nlp: Language, name: str, rules_path: str | None):
    return ContextComponent(nlp, rules_path)
