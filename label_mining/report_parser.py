"""Report text -> mentions: typed, valued, lateralised, modified spans with their rule and section.

The flow per chunk of reports (see :mod:`label_mining.pipeline` for the streaming around it):

1. :mod:`text_hygiene` — length-preserving clean-up, reason when nothing can be read;
2. :mod:`sectioniser` — sections, laterality sub-sections, sentences (regex, whole text);
3. :mod:`prescan` — keep only the sentences that can carry a label (regex);
4. spaCy — ``spacy.blank("en")`` + mammography tokenizer exceptions, ``mammo_entities`` (phrase
   matcher + value grammars) and ``mammo_context`` (ConText modifiers), run ONCE per chunk on a
   Doc made of the kept sentences of all its reports (sentence bounds in ``user_data``): one
   tokenizer call and one matcher pass instead of one per sentence;
5. laterality attribution per entity (clause, sentence, laterality heading, previous sentence
   of the section, else both breasts), on character offsets read from Doc arrays.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from spacy.attrs import IDX, LENGTH
from spacy.language import Language

from label_mining import context_rules as _context_rules  # noqa: F401  registers mammo_context
from label_mining import entity_matcher as _entity_matcher  # noqa: F401  registers mammo_entities
from label_mining.entity_rules import (ASSESSMENT, DENSITY, DENSITY_NUMERALS, FINDING_DENSITY_WORDS, LATERALITY,
                                      LATERALITY_WORDS, RULES_BY_ID)
from label_mining.prescan import Prescan, sides_named
from label_mining.sectioniser import split_sections, split_sentences
from label_mining.spacing import original_offset, space_punctuation
from label_mining.text_hygiene import clean_report_text
from label_mining.tokenizer import blank_mammography_nlp
from label_mining.uncertainty_policy import ParserPolicy

# clause breaks for side attribution: "BI-RADS 1 right, BI-RADS 4 left", "L: BI-RADS 6 / R: BI-RADS 2"
_CLAUSE_BREAK = re.compile(r"[,;|]| / |\.\s")
_WORD = re.compile(r"[A-Za-z]+")
_DENSITY_TOPIC = re.compile(r"(?:(\S+)\s+)?(densit|composition|parenchym)", re.IGNORECASE)
_WHITESPACE_RUN = re.compile(r"\s{2,}|[\t\n\r\f\v]")
# Sentences per spaCy Doc. One Doc per sentence costs ~20 us of Doc overhead each; one Doc per
# chunk makes spaCy's special-case retokenisation superlinear (measured 8x slower per sentence at
# 5,000 sentences); a few dozen sentences per Doc is the flat part of that curve.
SENTENCES_PER_DOC = 64
_SEPARATOR = " "    # between sentences in a Doc; bounds are token indices (a newline or a double space here
                    # defeats spaCy's tokenizer cache: 5-20x slower)


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
    doc_start: int = 0              # char offset of this sentence in the chunk Doc


class ReportParser:
    """Build once per process (spaCy pipeline + compiled matchers); call :meth:`parse_many` per chunk."""

    def __init__(self, policy: ParserPolicy | None = None, context_rules_path: str | None = None):
        self.policy = policy or ParserPolicy()
        self.nlp = build_nlp(context_rules_path, set_ents=False)
        self._components = [proc for _, proc in self.nlp.pipeline]

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
        for i in range(0, len(candidates), SENTENCES_PER_DOC):
            self._run_spacy(candidates[i:i + SENTENCES_PER_DOC], cleaned, results, originals, inserted)
        for parsed in results:
            if parsed.reason is None and not any(m.type in (ASSESSMENT, DENSITY) for m in parsed.mentions):
                parsed.reason = "no_label_statements"
        return results

    # ------------------------------------------------------------------------------------
    def _run_spacy(self, candidates: list[_Candidate], cleaned: list[str], results: list[ParsedReport],
                   originals: list[str], inserted: list[list[int]]) -> None:
        pos, parts = 0, []
        for c in candidates:
            c.doc_start = pos
            parts.append(c.text)
            pos += len(c.text) + len(_SEPARATOR)
        doc = self.nlp.make_doc(_SEPARATOR.join(parts))
        arr = doc.to_array([IDX, LENGTH])
        idx = arr[:, 0].tolist()
        length = arr[:, 1].tolist()
        tok_starts = [bisect.bisect_left(idx, c.doc_start) for c in candidates]
        bounds = []
        for k, c in enumerate(candidates):
            end = tok_starts[k + 1] if k + 1 < len(candidates) else len(doc)
            bounds.append((tok_starts[k], end, c.section))
        doc.user_data["sentences"] = bounds
        for proc in self._components:
            doc = proc(doc)
        per_sentence: dict[int, list] = {}
        for ent in doc.user_data["entities"]:
            per_sentence.setdefault(bisect.bisect_right(tok_starts, ent[0]) - 1, []).append(ent)
        context = doc.user_data["context"]
        for k, ents in per_sentence.items():
            cand = candidates[k]
            spans = [(idx[s] - cand.doc_start, idx[e - 1] + length[e - 1] - cand.doc_start, s, e, rule_id, etype,
                      vals, is_range) for s, e, rule_id, etype, vals, is_range in ents]
            r = cand.report
            results[r].mentions.extend(self._mentions(spans, cand, context, cleaned[r], originals[r], inserted[r]))

    def _mentions(self, spans, cand: _Candidate, context, report_text: str, original: str,
                  inserted: list[int]) -> list[Mention]:
        sentence = cand.text
        typed = []
        lats = []
        for c0, c1, s, e, rule_id, etype, vals, is_range in spans:
            if rule_id == "density.side_letter":
                # "right a, left B" names a grade per breast, but only where density is the topic;
                # elsewhere it is just a side followed by a letter ("left: a 12 mm mass")
                lats.append((c0, c0 + 1, "R" if sentence[c0] in "rR" else "L"))
                if cand.section != "composition" and not _density_is_topic(sentence):
                    continue
            elif etype == LATERALITY:
                lats.append((c0, c1, LATERALITY_WORDS.get(sentence[c0:c1].lower().rstrip(": "), "B")))
                continue
            if rule_id in ("assessment.acr_number", "assessment.category") and (
                    cand.section == "composition"
                    or rule_id == "assessment.acr_number" and self.policy.acr_number_means == "density"):
                # under a composition heading a number is a density grade ("Breast composition: R: ACR 2");
                # some sites' "ACR 1-4" always is (4th-edition density scale)
                etype = DENSITY
                vals = tuple(DENSITY_NUMERALS[v] for v in vals if v in DENSITY_NUMERALS)
                is_range = is_range and len(vals) == 2
            if vals:
                typed.append((c0, c1, s, e, RULES_BY_ID[rule_id], etype, tuple(vals), is_range))
        if not typed:
            return []
        breaks = [m.start() for m in _CLAUSE_BREAK.finditer(sentence)]
        owner_clauses: dict[str, set[int]] = {}
        for c0, _, _, _, _, etype, _, _ in typed:
            owner_clauses.setdefault(etype, set()).add(bisect.bisect_right(breaks, c0))
        out = []
        last_side: dict[str, str] = {}
        for c0, c1, s, e, rule, etype, vals, is_range in typed:
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
            out.append(Mention(
                section=cand.section, start=start, end=end, text=text, type=etype,
                values=vals, is_range=is_range, laterality=lat, laterality_source=how,
                modifiers=context.get((s, e), frozenset()), rule_id=rule.rule_id, descriptive=rule.descriptive,
                sentence=sentence.strip()))
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


def _density_is_topic(sentence: str) -> bool:
    """A density word about the breast's composition, not a finding ("increased density left breast")."""
    for m in _DENSITY_TOPIC.finditer(sentence):
        before = (m.group(1) or "").lower().strip("(,;:")
        if not (m.group(2).lower() == "densit" and before in FINDING_DENSITY_WORDS):
            return True
    return False


def _nearest(c0: int, c1: int, lats) -> str:
    def distance(lat):
        if lat[1] <= c0:
            return (c0 - lat[1], 0)     # ties go to the side written first
        return (lat[0] - c1, 1)
    return min(lats, key=distance)[2]
