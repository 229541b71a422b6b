"""Report text -> mentions: typed, valued, lateralised, modified spans with their rule and section.

The flow per chunk of reports (see :mod:`label_mining.pipeline` for the streaming around it):

1. :mod:`text_hygiene` — length-preserving clean-up, reason when nothing can be read;
2. :mod:`sectioniser` — sections, laterality sub-sections, sentences (regex, whole text);
3. :mod:`prescan` — keep only the sentences that can carry a label (regex);
4. :mod:`sentence_reading` — spaCy (``spacy.blank("en")`` + mammography tokenizer rules,
   ``mammo_entities``: phrase matcher + value grammars, ``mammo_context``: ConText modifiers) over
   the kept sentences of a chunk's reports, 64 per Doc (sentence bounds in ``user_data``), each
   distinct (sentence, section) once: what a sentence says by itself is kept in a bounded LRU;
5. laterality attribution per entity (clause, sentence, laterality heading, previous sentence
   of the section, else both breasts), on character offsets read from Doc arrays.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from spacy.language import Language

from label_mining import context_rules as _context_rules  # noqa: F401  registers mammo_context
from label_mining import entity_matcher as _entity_matcher  # noqa: F401  registers mammo_entities
from label_mining.entity_rules import ASSESSMENT, DENSITY
from label_mining.prescan import Prescan, sides_named
from label_mining.sectioniser import split_sections, split_sentences
from label_mining.sentence_reading import DEFAULT_CACHE_SIZE, SentenceReader, SentenceReading
from label_mining.spacing import original_offset, space_punctuation
from label_mining.text_hygiene import clean_report_text
from label_mining.tokenizer import blank_mammography_nlp
from label_mining.uncertainty_policy import ParserPolicy

_WORD = re.compile(r"[A-Za-z]+")
_WHITESPACE_RUN = re.compile(r"\s{2,}|[\t\n\r\f\v]")


def _compact(sentence: str) -> tuple[str, list[int] | None]:
    """Collapse whitespace runs to one space (spaCy turns extra spaces into tokens that break
    phrases: "BI-RADS\\n  4"), with a map back to the original offsets; None when nothing changed."""
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


class Mention(NamedTuple):
    """One typed, valued span (immutable; a named tuple: cheaper to build than a frozen dataclass)."""
    section: str
    start: int                 # char offsets into the report text
    end: int
    text: str
    type: str                  # assessment | density | pathology
    values: tuple[str, ...]    # "4B" / "3" / "C" / "malignant"
    is_range: bool
    laterality: str | None     # R / L / B
    laterality_source: str | None
    modifiers: frozenset[str]
    rule_id: str
    descriptive: bool
    sentence: str              # evidence: the whole sentence

    @property
    def label_values(self) -> tuple[str, ...]:
        """Values as task labels: "4B" -> "4"; density letters unchanged."""
        if self.type != ASSESSMENT:
            return self.values
        return tuple([v[0] for v in self.values])


@dataclass
class ParsedReport:
    reason: str | None                       # why no label can come from this report, if so
    notes: tuple[str, ...] = ()
    mentions: list[Mention] = field(default_factory=list)
    n_sentences: int = 0            # sentences of the sections that had a keyword at all
    n_label_sentences: int = 0


def build_nlp(context_rules_path: str | None = None, set_ents: bool = True) -> Language:
    nlp = blank_mammography_nlp()
    nlp.add_pipe("mammo_entities", config={"set_ents": set_ents})
    nlp.add_pipe("mammo_context", config={"rules_path": context_rules_path})
    return nlp


@dataclass
class _Candidate:
    report: int
    section: str
    section_laterality: str | None
    section_inline: bool            # the laterality heading was a label inside a paragraph
    start: int                      # sentence char span in the report
    end: int
    text: str                       # compacted sentence text
    offsets: list[int] | None       # compacted -> original offsets
    previous: list[tuple[int, int]]  # earlier sentences of the same section (for carrying a side)


class ReportParser:
    """Build once per process (spaCy pipeline + compiled matchers); call :meth:`parse_many` per chunk."""

    def __init__(self, policy: ParserPolicy | None = None, context_rules_path: str | None = None,
                 sentence_cache_size: int = DEFAULT_CACHE_SIZE):
        self.policy = policy or ParserPolicy()
        self.nlp = build_nlp(context_rules_path, set_ents=False)
        self.reader = SentenceReader(self.nlp, self.policy, sentence_cache_size)

    def parse(self, text) -> ParsedReport:
        return self.parse_many([text])[0]

    def parse_many(self, texts: list) -> list[ParsedReport]:
        results: list[ParsedReport] = []
        cleaned: list[str] = []
        originals: list[str] = []
        inserted: list[list[int]] = []
        candidates: list[_Candidate] = []
        for idx, raw in enumerate(texts):
            clean = clean_report_text(raw, self.policy.max_chars)
            originals.append(clean.text)
            parsed = ParsedReport(clean.reason, clean.notes)
            results.append(parsed)
            scan = None if clean.reason else Prescan(clean.text)
            if scan is None or (not scan.strong and not scan.descriptive):
                cleaned.append(clean.text)
                inserted.append([])
                if scan is not None:
                    parsed.reason = "no_label_statements"
                continue
            text, added = space_punctuation(clean.text)
            cleaned.append(text)
            inserted.append(added)
            if added:
                scan = scan.shift(added)      # keyword offsets in the spaced text
            kept = 0
            for section in split_sections(text):
                if section.name != "composition" and not scan.any_in(section.start, section.end):
                    continue   # no keyword in the whole section: no need to even split its sentences
                sentences = split_sentences(text, section.start, section.end)
                parsed.n_sentences += len(sentences)
                for k, (s, e) in enumerate(sentences):
                    # no leading/trailing blanks: a double space before a word stops spaCy's tokenizer
                    # cache for that word (measured 20x slower tokenisation)
                    while s < e and text[s].isspace():
                        s += 1
                    while e > s and text[e - 1].isspace():
                        e -= 1
                    if kept < self.policy.max_label_sentences and scan.can_carry_label(s, e, section.name):
                        compact, offsets = _compact(text[s:e])
                        candidates.append(_Candidate(idx, section.name, section.laterality, section.inline, s, e,
                                                     compact, offsets,
                                                     sentences[:k]))
                        kept += 1
            parsed.n_label_sentences = kept
            if kept >= self.policy.max_label_sentences:
                parsed.notes = parsed.notes + ("label_sentence_limit",)
        self._read(candidates, results, cleaned, originals, inserted)
        for parsed in results:
            if parsed.reason is None and not any(m.type in (ASSESSMENT, DENSITY) for m in parsed.mentions):
                parsed.reason = "no_label_statements"
        return results

    # ------------------------------------------------------------------------------------
    def _read(self, candidates: list[_Candidate], results: list[ParsedReport], cleaned: list[str],
              originals: list[str], inserted: list[list[int]]) -> None:
        readings = self.reader.read_many([(c.text, c.section) for c in candidates])
        for cand, reading in zip(candidates, readings):
            if reading.typed:
                r = cand.report
                results[r].mentions.extend(self._mentions(reading, cand, cleaned[r], originals[r], inserted[r]))

    def _mentions(self, reading: SentenceReading, cand: _Candidate, report_text: str, original: str,
                  inserted: list[int]) -> list[Mention]:
        sentence = cand.text
        evidence = sentence.strip()
        lats, breaks, owner_clauses = reading.lats, reading.breaks, reading.owner_clauses
        out = []
        last_side: dict[str, str] = {}
        for c0, c1, rule, etype, vals, is_range, modifiers in reading.typed:
            lat, how = self._laterality(c0, c1, etype, lats, breaks, owner_clauses, cand, report_text)
            if how in ("section", "previous_sentence", "report") and etype in last_side:
                # an apposition ("R: BI-RADS 6, known biopsy-proven malignancy / L: ...") speaks for the
                # side of the statement it explains
                lat, how = last_side[etype], "apposition"
            if how in ("clause", "sentence"):
                last_side[etype] = lat
            r0, r1 = (c0, c1) if cand.offsets is None else (cand.offsets[c0], cand.offsets[c1 - 1] + 1)
            start, end = original_offset(cand.start + r0, inserted), original_offset(cand.start + r1, inserted)
            text = sentence[c0:c1] if not inserted else " ".join(original[start:end].split())
            out.append(Mention(cand.section, start, end, text, etype, vals, is_range, lat, how, modifiers,
                               rule.rule_id, rule.descriptive, evidence))
        return out

    def _laterality(self, c0, c1, etype, lats, breaks, owner_clauses, cand: _Candidate, report_text: str):
        if lats:
            clause = bisect.bisect_right(breaks, c0)
            same_clause = [lat for lat in lats if bisect.bisect_right(breaks, lat[0]) == clause]
            if same_clause:
                return _nearest(c0, c1, same_clause), "clause"
            # a side in another clause counts unless that clause already speaks for a same-type entity
            owned = owner_clauses.get(etype, set())
            free = [lat for lat in lats if bisect.bisect_right(breaks, lat[0]) not in owned]
            if free:
                before = [lat for lat in free if lat[1] <= c0]
                return (before[-1][2] if before else free[0][2]), "sentence"
        standalone = len(_WORD.findall(cand.text, 0, c0)) <= 2   # "BI-RADS: 1." / "Assessment category: negative."
        if cand.section_laterality:
            if not cand.section_inline:
                return cand.section_laterality, "section"
            # an inline label ("... RIGHT: Unremarkable. bi-rads: 1.") scopes the finding sentences after
            # it ("Round nodule, likely benign (BI-RADS 2)"), not a stand-alone overall statement, and
            # density is one value for both breasts unless a breast is named
            if etype != DENSITY and not standalone:
                return cand.section_laterality, "section"
            return "B", "report"
        if etype == ASSESSMENT and self.policy.carry_laterality_within_section:
            for s, e in reversed(cand.previous):
                sides = sides_named(report_text[s:e])
                if sides:
                    if len(sides) == 1:
                        return next(iter(sides)), "previous_sentence"
                    break
        return "B", "report"


def _nearest(c0: int, c1: int, lats) -> str:
    def distance(lat):
        if lat[1] <= c0:
            return (c0 - lat[1], 0)     # ties go to the side written first
        return (lat[0] - c1, 1)
    return min(lats, key=distance)[2]
