"""Report text -> mentions: typed, valued, lateralised, modified spans with their rule and section.

The flow per chunk of reports (see :mod:`label_mining.pipeline` for the streaming around it):

1. :mod:`text_hygiene` — length-preserving clean-up, reason when nothing can be read;
2. :mod:`sectioniser` — sections, laterality sub-sections, sentences (regex, whole text);
3. :mod:`prescan` — keep only the sentences that can carry a label (regex);
4. spaCy — ``spacy.blank("en")`` + mammography tokenizer exceptions, ``mammo_entities`` (one
   compiled Matcher) and ``mammo_context`` (ConText modifiers), over the kept sentences only,
   batched across all reports of the chunk;
5. laterality attribution per entity (clause, sentence, laterality heading, previous sentence
   of the section, else both breasts), done on character offsets.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

import spacy  # noqa: F401  (registers nothing by itself; the components below do)
from spacy.language import Language

from label_mining import context_rules as _context_rules  # noqa: F401  registers mammo_context
from label_mining import entity_matcher as _entity_matcher  # noqa: F401  registers mammo_entities
from label_mining.entity_rules import (ASSESSMENT, DENSITY, DENSITY_NUMERALS, LATERALITY, LATERALITY_WORDS,
                                       RULES_BY_ID, parse_assessment, parse_density)
from label_mining.prescan import can_carry_label, sides_named
from label_mining.sectioniser import split_sections, split_sentences
from label_mining.text_hygiene import clean_report_text
from label_mining.tokenizer import blank_mammography_nlp
from label_mining.uncertainty_policy import ParserPolicy

_CLAUSE_BREAK = re.compile(r"[,;]")
_WHITESPACE_RUN = re.compile(r"\s{2,}|[\t\n\r\f\v]")


def _compact(sentence: str) -> tuple[str, list[int] | None]:
    """Collapse whitespace runs to one space (spaCy turns extra spaces into tokens that break
    patterns: "BI-RADS\n  4"), with a map back to the original offsets; None when nothing changed."""
    if not _WHITESPACE_RUN.search(sentence):
        return sentence, None
    out, where, pos = [], [], 0
    for m in re.finditer(r"\s+", sentence):
        out.append(sentence[pos:m.start()])
        where.extend(range(pos, m.start()))
        out.append(" ")
        where.append(m.start())
        pos = m.end()
    out.append(sentence[pos:])
    where.extend(range(pos, len(sentence)))
    where.append(len(sentence))
    return "".join(out), where
_DENSITY_CONTEXT = {"density", "densities", "composition", "type", "pattern", "parenchyma"}
# "composition is a heterogeneously dense ..." — the article "a" is not density A
_A_MAY_PRECEDE = {"and", "or", "to", "right", "left", "bilaterally", "bilateral", "breast", "breasts", "on",
                  "in", "both", "for", "with"}


@dataclass(frozen=True)
class Mention:
    section: str
    start: int                 # char offsets into the report text
    end: int
    text: str
    type: str                  # assessment | density | pathology | laterality
    values: tuple[str, ...]    # "4B" / "3" / "C" / "malignant" / "R"
    is_range: bool
    laterality: str | None     # R / L / B for assessment, density, pathology
    laterality_source: str | None
    modifiers: frozenset[str]
    rule_id: str
    descriptive: bool
    sentence: str              # evidence: the whole sentence

    @property
    def label_values(self) -> tuple[str, ...]:
        """Values as task labels: "4B" -> "4"; density letters unchanged."""
        return tuple(v[0] if self.type == ASSESSMENT else v for v in self.values)


@dataclass
class ParsedReport:
    reason: str | None                       # why no label can come from this report, if so
    notes: tuple[str, ...] = ()
    mentions: list[Mention] = field(default_factory=list)
    n_sentences: int = 0
    n_label_sentences: int = 0


def build_nlp(context_rules_path: str | None = None) -> Language:
    nlp = blank_mammography_nlp()
    nlp.add_pipe("mammo_entities")
    nlp.add_pipe("mammo_context", config={"rules_path": context_rules_path})
    return nlp


@dataclass(frozen=True)
class _Candidate:
    report: int
    section: str
    section_laterality: str | None
    start: int
    end: int
    carried: str | None          # side named by the previous sentence of this section, if exactly one


class ReportParser:
    """Build once per process (spaCy pipeline + compiled matchers); call :meth:`parse_many` per chunk."""

    def __init__(self, policy: ParserPolicy | None = None, context_rules_path: str | None = None):
        self.policy = policy or ParserPolicy()
        self.nlp = build_nlp(context_rules_path)
        self._components = [proc for _, proc in self.nlp.pipeline]

    def parse(self, text) -> ParsedReport:
        return self.parse_many([text])[0]

    def parse_many(self, texts: list) -> list[ParsedReport]:
        results: list[ParsedReport] = []
        cleaned: list[str] = []
        candidates: list[_Candidate] = []
        for idx, raw in enumerate(texts):
            clean = clean_report_text(raw, self.policy.max_chars)
            cleaned.append(clean.text)
            parsed = ParsedReport(clean.reason, clean.notes)
            results.append(parsed)
            if clean.reason:
                continue
            text = clean.text
            kept = 0
            for section in split_sections(text):
                previous_sides: frozenset[str] = frozenset()
                for s, e in split_sentences(text, section.start, section.end):
                    parsed.n_sentences += 1
                    sentence = text[s:e]
                    if kept < self.policy.max_label_sentences and can_carry_label(sentence, section.name):
                        carried = next(iter(previous_sides)) if len(previous_sides) == 1 else None
                        candidates.append(_Candidate(idx, section.name, section.laterality, s, e, carried))
                        kept += 1
                    if self.policy.carry_laterality_within_section:
                        sides = sides_named(sentence)
                        if sides:
                            previous_sides = sides
            parsed.n_label_sentences = kept
            if kept >= self.policy.max_label_sentences:
                parsed.notes = parsed.notes + ("label_sentence_limit",)
        if candidates:
            compacted = [_compact(cleaned[c.report][c.start:c.end]) for c in candidates]
            docs = self.nlp.tokenizer.pipe(text for text, _ in compacted)
            for doc, cand, (_, offsets) in zip(docs, candidates, compacted):
                doc.user_data["section"] = cand.section
                for proc in self._components:
                    doc = proc(doc)
                results[cand.report].mentions.extend(self._mentions(doc, cand, offsets))
        for parsed in results:
            if parsed.reason is None and not any(m.type in (ASSESSMENT, DENSITY) for m in parsed.mentions):
                parsed.reason = "no_label_statements"
        return results

    # ------------------------------------------------------------------------------------
    def _mentions(self, doc, cand: _Candidate, offsets: list[int] | None) -> list[Mention]:
        ents = list(doc.ents)
        if not ents:
            return []
        rules = doc.user_data["rules"]
        context = doc.user_data.get("context", {})
        sentence = doc.text
        typed = []   # (span, rule, type, values, is_range)
        for span in ents:
            rule = RULES_BY_ID[rules[(span.start, span.end)]]
            if rule.type == LATERALITY:
                continue
            etype = rule.type
            lowers = [t.lower_ for t in span]
            if etype == ASSESSMENT:
                values, is_range = parse_assessment(lowers, rule)
                if rule.rule_id in ("assessment.acr_number", "assessment.category") and (
                        self.policy.acr_number_means == "density" and rule.rule_id == "assessment.acr_number"
                        or _DENSITY_CONTEXT.intersection(t.lower_ for t in doc[max(0, span.start - 3):span.start])):
                    etype = DENSITY
                    values = [DENSITY_NUMERALS[v] for v in values if v in DENSITY_NUMERALS]
                    is_range = is_range and len(values) == 2
            elif etype == DENSITY:
                values, is_range = parse_density(lowers, rule)
                if rule.rule_id == "density.letter" and values and values[0] == "A" and lowers[-1] == "a":
                    nxt = doc[span.end].lower_ if span.end < len(doc) else ""
                    if nxt.isalpha() and len(nxt) > 1 and nxt not in _A_MAY_PRECEDE:
                        continue
            else:
                values, is_range = [rule.value], False
            if not values:
                continue
            typed.append((span, rule, etype, tuple(values), is_range))
        if not typed:
            return []
        lats = [(span.start_char, span.end_char, LATERALITY_WORDS.get(span.text.lower(), "B"))
                for span in ents if span.label_ == LATERALITY]
        breaks = [m.start() for m in _CLAUSE_BREAK.finditer(sentence)]
        clause_of = lambda pos: bisect.bisect_right(breaks, pos)  # noqa: E731
        owner_clauses: dict[str, set[int]] = {}
        for span, _, etype, _, _ in typed:
            owner_clauses.setdefault(etype, set()).add(clause_of(span.start_char))
        out = []
        for span, rule, etype, values, is_range in typed:
            lat, how = self._laterality(span, etype, lats, clause_of, owner_clauses, cand)
            s_char, e_char = span.start_char, span.end_char
            if offsets is not None:
                s_char, e_char = offsets[s_char], offsets[e_char - 1] + 1
            out.append(Mention(
                section=cand.section, start=cand.start + s_char, end=cand.start + e_char,
                text=span.text, type=etype, values=values, is_range=is_range, laterality=lat,
                laterality_source=how, modifiers=context.get((span.start, span.end), frozenset()),
                rule_id=rule.rule_id, descriptive=rule.descriptive, sentence=sentence.strip()))
        return out

    def _laterality(self, span, etype, lats, clause_of, owner_clauses, cand: _Candidate):
        if lats:
            clause = clause_of(span.start_char)
            same_clause = [lat for lat in lats if clause_of(lat[0]) == clause]
            if same_clause:
                return _nearest(span, same_clause), "clause"
            # a side in another clause counts unless that clause already speaks for a same-type entity
            owned = owner_clauses.get(etype, set())
            free = [lat for lat in lats if clause_of(lat[0]) not in owned]
            if free:
                before = [lat for lat in free if lat[1] <= span.start_char]
                return (before[-1][2] if before else free[0][2]), "sentence"
        if cand.section_laterality:
            return cand.section_laterality, "section"
        if etype == ASSESSMENT and cand.carried:
            return cand.carried, "previous_sentence"
        return "B", "report"


def _nearest(span, lats) -> str:
    def distance(lat):
        if lat[1] <= span.start_char:
            return (span.start_char - lat[1], 0)     # ties go to the side written first
        return (lat[0] - span.end_char, 1)
    return min(lats, key=distance)[2]
