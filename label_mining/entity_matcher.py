"""spaCy component ``mammo_entities``: runs the entity rules' one ``Matcher`` and sets ``doc.ents``.

Overlaps are resolved by span length, then rule priority (an assessment beats a pathology word
inside it: "highly suggestive of malignancy" is BI-RADS 5, not a "malignancy" mention), then
position — so "probably benign" wins over "benign" and "density ACR 3" over "ACR 3". The rule that
produced each entity is kept in ``doc.user_data["rules"][(start, end)]`` for provenance.
"""

from __future__ import annotations

from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc, Span

from label_mining.entity_rules import ENTITY_RULES, RULES_BY_ID, priority


class EntityMatcher:
    def __init__(self, nlp: Language):
        self.matcher = Matcher(nlp.vocab)
        for rule in ENTITY_RULES:
            self.matcher.add(rule.rule_id, [list(p) for p in rule.patterns])
        self._rule_of_key = {nlp.vocab.strings[r.rule_id]: r for r in ENTITY_RULES}

    def __call__(self, doc: Doc) -> Doc:
        found = self.matcher(doc)
        if not found:
            doc.user_data["rules"] = {}
            return doc
        ranked = sorted(((s, e, self._rule_of_key[k]) for k, s, e in found),
                        key=lambda m: (-(m[1] - m[0]), -priority(m[2]), m[0]))
        taken = bytearray(len(doc))
        chosen = []
        for s, e, rule in ranked:
            if any(taken[s:e]):
                continue
            taken[s:e] = b"\x01" * (e - s)
            chosen.append((s, e, rule))
        chosen.sort(key=lambda m: m[0])
        doc.ents = [Span(doc, s, e, label=rule.type) for s, e, rule in chosen]
        doc.user_data["rules"] = {(s, e): rule.rule_id for s, e, rule in chosen}
        return doc


def rule_of(span: Span):
    return RULES_BY_ID[span.doc.user_data["rules"][(span.start, span.end)]]


@Language.factory("mammo_entities")
def make_entity_matcher(nlp: Language, name: str):
    return EntityMatcher(nlp)
