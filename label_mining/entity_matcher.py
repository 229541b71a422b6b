"""spaCy component ``mammo_entities``: phrase matching (C) + value grammars (per anchor) -> entities.

Overlaps are resolved by span length, then rule priority, then position — so "probably benign"
(3) wins over "benign" (2), "density ACR 3" (density C) over "ACR 3", and "highly suggestive of
malignancy" over the "malignancy" inside it.

A Doc may hold many sentences (the parser batches all label-bearing sentences of a chunk of
reports into one Doc, so spaCy is called once per chunk, not once per sentence); their token
bounds are in ``doc.user_data["sentences"]`` as ``(start, end, section)`` and no value grammar
reads across a bound. Results: ``doc.user_data["entities"]`` = sorted
``(start, end, rule_id, type, values, is_range)``; ``doc.ents`` too when ``set_ents``.
"""

from __future__ import annotations

import bisect

from spacy.attrs import LOWER
from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span

from label_mining.entity_rules import ENTITY_RULES, priority

READ_AHEAD = 8  # tokens a value grammar may read past its anchor


def sentence_bounds(doc: Doc) -> list[tuple[int, int, str | None]]:
    return doc.user_data.get("sentences") or [(0, len(doc), doc.user_data.get("section"))]


class EntityMatcher:
    def __init__(self, nlp: Language, set_ents: bool = True):
        self.set_ents = set_ents
        self.lower = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.exact = PhraseMatcher(nlp.vocab, attr="ORTH")
        for rule in ENTITY_RULES:
            target = self.exact if rule.case_sensitive else self.lower
            target.add(rule.rule_id, list(nlp.tokenizer.pipe(rule.phrases)))
        self._rule_of_key = {nlp.vocab.strings[r.rule_id]: r for r in ENTITY_RULES}

    def __call__(self, doc: Doc) -> Doc:
        found = self.lower(doc) + self.exact(doc)
        entities: list = []
        doc.user_data["entities"] = entities
        if not found:
            return doc
        bounds = sentence_bounds(doc)
        starts = [b[0] for b in bounds]
        strings = doc.vocab.strings
        lower_ids = doc.to_array(LOWER).tolist() if any(self._rule_of_key[k].reader or self._rule_of_key[k].not_after
                                                        for k, _, _ in found) else []
        candidates = []
        for key, s, e in found:
            rule = self._rule_of_key[key]
            sent_end = bounds[bisect.bisect_right(starts, s) - 1][1]
            if e > sent_end:
                continue
            if rule.not_after is not None and s > 0 and s - 1 >= bounds[bisect.bisect_right(starts, s) - 1][0]:
                anchors, words = rule.not_after
                if strings[lower_ids[s]] in anchors and strings[lower_ids[s - 1]] in words:
                    continue     # "focal asymmetric density": a finding, not breast composition
            if rule.reader is not None:
                window = [strings[h] for h in lower_ids[s:min(sent_end, e + READ_AHEAD)]]
                read = rule.reader(window, 0, e - s)
                if read is None:
                    continue
                e = s + read[0]
                vals, is_range = read[1], read[2]
            else:
                vals, is_range = (rule.value,), False
            candidates.append((s, e, rule, vals, is_range))
        candidates.sort(key=lambda m: (-(m[1] - m[0]), -priority(m[2]), m[0]))
        taken = bytearray(len(doc))
        for s, e, rule, vals, is_range in candidates:
            if any(taken[s:e]):
                continue
            taken[s:e] = b"\x01" * (e - s)
            entities.append((s, e, rule.rule_id, rule.type, vals, is_range))
        entities.sort()
        if self.set_ents:
            doc.ents = [Span(doc, s, e, label=t) for s, e, _, t, _, _ in entities]
        return doc


@Language.factory("mammo_entities", default_config={"set_ents": True})
def make_entity_matcher(nlp: Language, name: str, set_ents: bool):
    return EntityMatcher(nlp, set_ents)
