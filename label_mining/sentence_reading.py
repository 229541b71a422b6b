"""What one label-bearing sentence says by itself — its typed entities, side words and clause breaks —
computed once per distinct (sentence text, section) and kept in a bounded LRU.

Why this is exact: the parser sends spaCy each candidate sentence stripped, with its whitespace runs
collapsed, and joined to its neighbours by one space; the tokenizer splits at that space, the entity
matcher drops any match or value grammar that would cross a sentence bound, and ConText keeps only the
triggers inside the sentence. So the entities, values and modifiers of a sentence depend on its text
and its section (section modifiers: everything under "Comparison:" is historical) and on nothing
else — not on its report, not on the sentences batched beside it. What does depend on the report
(char offsets in it, the laterality heading of the section, the sides named in earlier sentences)
is resolved per occurrence by :class:`label_mining.report_parser.ReportParser`.
``tests/test_label_fast_paths.py`` checks that parsing with the cache equals parsing without it.

Screening archives repeat sentences verbatim ("Breast composition: scattered areas of fibroglandular
density (ACR B).", "Impression: Negative mammogram. BI-RADS 1."): a repeated sentence costs a dict
look-up instead of a tokenizer, two phrase matchers and a ConText pass.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections import OrderedDict
from typing import NamedTuple

from spacy.attrs import IDX, LENGTH
from spacy.language import Language

from label_mining.entity_rules import (ASSESSMENT, DENSITY, DENSITY_NUMERALS, FINDING_DENSITY_WORDS, LATERALITY,
                                      LATERALITY_WORDS, RULES_BY_ID, EntityRule)
from label_mining.uncertainty_policy import ParserPolicy

# clause breaks for side attribution: "BI-RADS 1 right, BI-RADS 4 left", "L: BI-RADS 6 / R: BI-RADS 2"
CLAUSE_BREAK = re.compile(r"[,;|]| / |\.\s")
_DENSITY_TOPIC = re.compile(r"(?:(\S+)\s+)?(densit|composition|parenchym)", re.IGNORECASE)
# Sentences per spaCy Doc. One Doc per sentence costs ~20 us of Doc overhead each; one Doc per
# chunk makes spaCy's special-case retokenisation superlinear (measured 8x slower per sentence at
# 5,000 sentences); a few dozen sentences per Doc is the flat part of that curve.
SENTENCES_PER_DOC = 64
SEPARATOR = " "    # between sentences in a Doc; bounds are token indices (a newline or a double space here
                   # defeats spaCy's tokenizer cache: 5-20x slower)
DEFAULT_CACHE_SIZE = 20_000   # distinct sentences kept (a few hundred bytes each)


class Typed(NamedTuple):
    """One entity that yields a value, in sentence-local char offsets."""
    c0: int
    c1: int
    rule: EntityRule
    type: str
    values: tuple[str, ...]
    is_range: bool
    modifiers: frozenset[str]


class SentenceReading(NamedTuple):
    typed: tuple[Typed, ...]
    lats: tuple[tuple[int, int, str], ...]     # side words: (c0, c1, "R" / "L" / "B")
    breaks: tuple[int, ...]                    # clause-break offsets (empty when nothing is typed)
    owner_clauses: dict[str, frozenset[int]]   # entity type -> clauses holding one


_NOTHING = SentenceReading((), (), (), {})


def density_is_topic(sentence: str) -> bool:
    """A density word about the breast's composition, not a finding ("increased density left breast")."""
    for m in _DENSITY_TOPIC.finditer(sentence):
        before = (m.group(1) or "").lower().strip("(,;:")
        if not (m.group(2).lower() == "densit" and before in FINDING_DENSITY_WORDS):
            return True
    return False


def read_entities(spans, sentence: str, section: str, policy: ParserPolicy) -> SentenceReading:
    """``spans``: (c0, c1, rule_id, type, values, is_range, modifiers) of one sentence, in order."""
    typed = []
    lats = []
    for c0, c1, rule_id, etype, vals, is_range, modifiers in spans:
        if rule_id == "density.side_letter":
            # "right a, left B" names a grade per breast, but only where density is the topic;
            # elsewhere it is just a side followed by a letter ("left: a 12 mm mass")
            lats.append((c0, c0 + 1, "R" if sentence[c0] in "rR" else "L"))
            if section != "composition" and not density_is_topic(sentence):
                continue
        elif etype == LATERALITY:
            lats.append((c0, c1, LATERALITY_WORDS.get(sentence[c0:c1].lower().rstrip(": "), "B")))
            continue
        if rule_id in ("assessment.acr_number", "assessment.category") and (
                section == "composition"
                or rule_id == "assessment.acr_number" and policy.acr_number_means == "density"):
            # under a composition heading a number is a density grade ("Breast composition: R: ACR 2");
            # some sites' "ACR 1-4" always is (4th-edition density scale)
            etype = DENSITY
            vals = tuple(DENSITY_NUMERALS[v] for v in vals if v in DENSITY_NUMERALS)
            is_range = is_range and len(vals) == 2
        if vals:
            typed.append(Typed(c0, c1, RULES_BY_ID[rule_id], etype, tuple(vals), is_range, modifiers))
    if not typed:
        return SentenceReading((), tuple(lats), (), {})
    breaks = tuple(m.start() for m in CLAUSE_BREAK.finditer(sentence))
    owner: dict[str, set[int]] = {}
    for t in typed:
        owner.setdefault(t.type, set()).add(bisect.bisect_right(breaks, t.c0))
    return SentenceReading(tuple(typed), tuple(lats), breaks, {k: frozenset(v) for k, v in owner.items()})


class SentenceReader:
    """spaCy over distinct sentences, batched, with a bounded LRU of (text, section) -> reading."""

    def __init__(self, nlp: Language, policy: ParserPolicy, cache_size: int = DEFAULT_CACHE_SIZE):
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self.nlp = nlp
        self.policy = policy
        self.cache_size = cache_size
        self._components = [proc for _, proc in nlp.pipeline]
        self._cache: OrderedDict[tuple[str, str], SentenceReading] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0     # sentence occurrences answered without spaCy / distinct ones read by it

    def read_many(self, sentences: list[tuple[str, str]]) -> list[SentenceReading]:
        """One reading per (text, section), in order; texts stripped and whitespace-compacted."""
        cache = self._cache
        out: list[SentenceReading | None] = [None] * len(sentences)
        todo: dict[tuple[str, str], list[int]] = {}
        with self._lock:        # one parser may serve several threads (the review app's re-mining)
            for k, key in enumerate(sentences):
                reading = cache.get(key)
                if reading is not None:
                    cache.move_to_end(key)
                    out[k] = reading
                else:
                    todo.setdefault(key, []).append(k)
        self.misses += len(todo)                   # read by spaCy
        self.hits += len(sentences) - len(todo)    # repeats: from the cache or from earlier in this call
        keys = list(todo)
        for i in range(0, len(keys), SENTENCES_PER_DOC):
            batch = keys[i:i + SENTENCES_PER_DOC]
            readings = self._read_batch(batch)
            with self._lock:
                for key, reading in zip(batch, readings):
                    for k in todo[key]:
                        out[k] = reading
                    if self.cache_size:
                        cache[key] = reading
                        if len(cache) > self.cache_size:
                            cache.popitem(last=False)
        return out

    def _read_batch(self, batch: list[tuple[str, str]]) -> list[SentenceReading]:
        pos, starts = 0, []
        for text, _ in batch:
            starts.append(pos)
            pos += len(text) + len(SEPARATOR)
        doc = self.nlp.make_doc(SEPARATOR.join(text for text, _ in batch))
        arr = doc.to_array([IDX, LENGTH])
        idx = arr[:, 0].tolist()
        length = arr[:, 1].tolist()
        tok_starts = [bisect.bisect_left(idx, s) for s in starts]
        doc.user_data["sentences"] = [(tok_starts[k], tok_starts[k + 1] if k + 1 < len(batch) else len(doc), section)
                                      for k, (_, section) in enumerate(batch)]
        for proc in self._components:
            doc = proc(doc)
        per_sentence: dict[int, list] = {}
        for ent in doc.user_data["entities"]:
            per_sentence.setdefault(bisect.bisect_right(tok_starts, ent[0]) - 1, []).append(ent)
        context = doc.user_data["context"]
        readings = []
        none: frozenset[str] = frozenset()
        for k, (text, section) in enumerate(batch):
            ents = per_sentence.get(k)
            if not ents:
                readings.append(_NOTHING)
                continue
            base = starts[k]
            spans = [(idx[s] - base, idx[e - 1] + length[e - 1] - base, rule_id, etype, vals, is_range,
                      context.get((s, e), none)) for s, e, rule_id, etype, vals, is_range in ents]
            readings.append(read_entities(spans, text, section, self.policy))
        return readings
