"""Free-text mammography reports whose wording varies as real ones do, plus the labels
a careful radiologist would extract from each one.

Variation modelled: US BI-RADS headings and European ACR density classification
("ACR type 2" = composition B), per-breast and bilateral statements, BI-RADS 4A/4B/4C,
spelling variants ("bi-rads: 2", "BIRADS-4"), density as letters, words, ACR numbers and
ranges ("B–C", "B/C", "between b and c"), hedges ("probably benign", "cannot exclude"),
negations ("no suspicious mass"), several findings with different categories in one
breast, addenda that revise a category, misspelled or missing section headings, typos,
prose reports without headings, and (vtb) reports with no assessment or no density.

Extraction rules the truth follows (``ReportLabels``):

* a breast's category is the highest category the report gives that breast; an addendum
  that revises it wins; a bilateral statement ("BI-RADS 2 bilaterally", or one overall
  category when both breasts share it) applies to both breasts; BI-RADS 0 (incomplete) is
  not a final category; 4A/4B/4C count as 4;
* a category quoted from a prior study ("Prior mammogram 2016 (then BI-RADS 2)") is not
  today's assessment;
* an assessment is only read from an explicit category or a BI-RADS assessment name in
  the impression ("Assessment: negative", "probably benign"); descriptive findings alone
  give no category (null);
* density applies to both breasts unless stated per breast; a range resolves to the
  denser class (BI-RADS 5th ed.: when in doubt between two categories, assign the higher);
* the report's malignancy is derived from its category (paper 2.3): 1–2 -> 0, 4–6 -> 1,
  3 or none -> null.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .plan import DENSITIES, BreastPlan, ExamPlan, Finding
from .profiles import CohortProfile
from .seeding import day_offset

SIDE_WORD = {"R": "right", "L": "left"}
CATEGORY_NAME = {1: "negative", 2: "benign", 3: "probably benign", 4: "suspicious",
                 5: "highly suggestive of malignancy", 6: "known biopsy-proven malignancy"}
DENSITY_WORDS = {
    "A": ("almost entirely fatty", "The breasts are almost entirely fatty."),
    "B": ("scattered fibroglandular density", "There are scattered areas of fibroglandular density."),
    "C": ("heterogeneously dense", "The breasts are heterogeneously dense, which may obscure small masses."),
    "D": ("extremely dense", "The breasts are extremely dense, which lowers the sensitivity of mammography."),
}
ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}

HEADINGS = {
    "history": ("History:", "HISTORY:", "Indication:", "Clinical indication:", "Clinical information:", "Hsitory:",
                "INDICATION:"),
    "technique": ("Technique:", "TECHNIQUE:", "Procedure:", "Tecnique:", "Exam:"),
    "comparison": ("Comparison:", "COMPARISON:", "Prior studies:", "Comparision:"),
    "density": ("Breast composition:", "BREAST COMPOSITION:", "Density:", "Breast density:", "Composition:",
                "Parenchymal density:", "Brest density:"),
    "findings": ("Findings:", "FINDINGS:", "Findngs:", "Report:", "Description:"),
    "impression": ("Impression:", "IMPRESSION:", "Assessment:", "ASSESSMENT:", "Conclusion:", "Impresion:",
                   "Summary:"),
    "recommendation": ("Recommendation:", "RECOMMENDATION:", "Recommendations:", "Reccomendation:", "Plan:"),
}
TYPOS = {"mammography": "mamography", "calcifications": "calcificatoins", "bilateral": "bilaterral",
         "architectural": "architechtural", "distortion": "distorsion", "screening": "screeing",
         "recommended": "recomended", "comparison": "comparsion", "unchanged": "unchnaged", "views": "veiws",
         "mass": "mas", "quadrant": "quadrnat", "cluster": "culster"}


@dataclass
class ReportLabels:
    present: bool = False
    acr: dict[str, int | None] = field(default_factory=lambda: {"L": None, "R": None})
    density: dict[str, str | None] = field(default_factory=lambda: {"L": None, "R": None})
    density_range: bool = False
    revised_by_addendum: dict[str, bool] = field(default_factory=lambda: {"L": False, "R": False})
    hedged: bool = False
    style: str | None = None

    def malignant(self, lat: str) -> int | None:
        acr = self.acr[lat]
        if acr is None or acr == 3:
            return None
        return 1 if acr >= 4 else 0


@dataclass(frozen=True)
class Report:
    accession_number: str
    patient_id: str
    study_date: str
    report_text: str
    reader_id: str
    reader_level: str


class _Writer:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def pick(self, options):
        return options[int(self.rng.integers(0, len(options)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    # --- category tokens ----------------------------------------------------------------
    def category(self, c: int, named: bool = True) -> str:
        """A BI-RADS category as written; c == 0 is the incomplete assessment.

        ``named=False`` where a side word follows ("BI-RADS 4 left"), which a name would split.
        """
        num = str(c)
        if c == 4 and self.chance(0.5):
            num = "4" + self.pick(("A", "B", "C", "a", "b"))
        form = self.pick(("BI-RADS {n}", "BI-RADS {n}", "BIRADS {n}", "BI-RADS: {n}", "bi-rads: {n}", "BIRADS-{n}",
                          "Bi-Rads {n}", "BI-RADS category {n}", "BI-RADS {n}"))
        text = form.format(n=num)
        if named and c in CATEGORY_NAME and self.chance(0.35):
            text += self.pick((" ({name})", " - {name}", ", {name}")).format(name=CATEGORY_NAME[c])
        if c == 0 and named:
            text += self.pick((" (incomplete, additional imaging needed)", " - needs additional imaging evaluation"))
        return text

    def assessment(self, c: int) -> str:
        """Category for the impression; may be the assessment name alone for 1–3 and 5."""
        if c in (1, 2, 3, 5) and self.chance(0.12):
            return self.pick(("{Name}.", "{Name} mammogram.", "Assessment category: {name}.")).format(
                Name=CATEGORY_NAME[c].capitalize(), name=CATEGORY_NAME[c])
        return self.category(c) + "."

    # --- density ------------------------------------------------------------------------
    def density(self, letter: str, european: bool, as_range: bool) -> str:
        i = DENSITIES.index(letter)
        if as_range:
            lo, hi = DENSITIES[i - 1], letter
            return self.pick((f"ACR {lo}–{hi}.", f"{lo}/{hi}.", f"between {lo.lower()} and {hi.lower()}.",
                              f"ACR {i}-{i + 1}.", f"{lo}-{hi}, {DENSITY_WORDS[hi][0]}.",
                              f"ACR type {ROMAN[i]}–{ROMAN[i + 1]}."))
        if european:
            return self.pick((f"ACR {i + 1}.", f"ACR type {i + 1}.", f"ACR {letter}.", f"ACR {ROMAN[i + 1]}.",
                              f"ACR-Typ {i + 1} ({DENSITY_WORDS[letter][0]}).", f"density {i + 1} (ACR)."))
        return self.pick((f"{letter.lower()}. {DENSITY_WORDS[letter][1]}", DENSITY_WORDS[letter][1],
                          f"{letter}.", f"ACR {letter}, {DENSITY_WORDS[letter][0]}.",
                          f"{DENSITY_WORDS[letter][0].capitalize()} (BI-RADS density {letter}).",
                          f"category {letter.lower()}."))

    def density_per_breast(self, r: str, l: str, european: bool) -> str:
        def tok(x: str) -> str:
            i = DENSITIES.index(x) + 1
            return f"ACR {i}" if european else self.pick((x, f"ACR {x}", x.lower()))
        return self.pick((f"right {tok(r)}, left {tok(l)}.", f"R: {tok(r)} / L: {tok(l)}.",
                          f"right breast {tok(r)}; left breast {tok(l)}."))

    # --- findings -----------------------------------------------------------------------
    def finding(self, f: Finding, with_category: bool, neutral: bool) -> str:
        mm = max(4, int(round(f.size * 300)))
        where = self.pick((f"at {f.clock} o'clock", f"at the {f.clock} o'clock position",
                           self.pick(("in the upper outer quadrant", "in the lower inner quadrant",
                                      "retroareolar", "in the upper inner quadrant", "in the central region"))))
        # morphology is what the image shows; the verdict is the reader's category for it
        text = {
            "mass_benign": lambda: self.pick((f"Oval circumscribed mass {mm} mm {where}",
                                              f"Well-defined round nodule {where}, {mm} mm",
                                              f"Circumscribed {mm} mm mass {where}, unchanged")),
            "calc_benign": lambda: self.pick(("Scattered coarse calcifications", "Vascular calcifications",
                                              "Popcorn-type calcification", "Round punctate calcifications")),
            "mass_indeterminate": lambda: self.pick((f"Lobulated mass with indistinct margins {where}, {mm} mm",
                                                     f"Microlobulated {mm} mm mass {where}")),
            "mass_malignant": lambda: self.pick((f"Irregular spiculated mass {mm} mm {where}",
                                                 f"Spiculated high-density mass {where} measuring {mm} mm",
                                                 f"Irregular mass with architectural distortion {where}, {mm} mm")),
            "calc_malignant": lambda: self.pick((f"Cluster of fine pleomorphic microcalcifications {where} over {mm} mm",
                                                 f"Segmental fine linear branching calcifications {where}",
                                                 f"Grouped amorphous microcalcifications {where}")),
        }[f.kind]()
        if not neutral:
            text += self.verdict(f.kind, f.category)
        if with_category:
            text += f" ({self.category(f.category)})"
        return text + "."

    def verdict(self, kind: str, category: int) -> str:
        options = {
            1: (", benign", ", likely benign"),
            2: (", benign", ", likely benign", ", typically benign"),
            3: (", probably benign",),
            4: ("; cannot exclude malignancy", ", suspicious", ", indeterminate"),
            5: (", highly suspicious for malignancy", ", highly suggestive of carcinoma"),
            6: (", the known biopsy-proven carcinoma", ", biopsy-proven malignancy"),
        }[category]
        if category == 2 and kind == "mass_benign":
            options += (", consistent with fibroadenoma",)
        if category == 2 and kind == "calc_benign":
            options += (" of benign appearance",)
        if category == 4 and kind == "calc_malignant":
            options += ("; cannot exclude DCIS",)
        return self.pick(options)

    def negative_findings(self) -> str:
        return self.pick(("No suspicious mass, architectural distortion or microcalcifications.",
                          "No suspicious mass or calcifications.", "No evidence of malignancy.",
                          "Unremarkable.", "No mammographic signs of malignancy.",
                          "No dominant mass, no suspicious calcifications."))


def _recommendation(w: _Writer, worst: int) -> str:
    return {1: w.pick(("Routine screening in 2 years.", "Annual screening mammography.", "Routine follow-up.")),
            2: w.pick(("Routine screening.", "Annual screening mammography recommended.", "Routine follow-up.")),
            3: w.pick(("Short-interval follow-up in 6 months.", "Follow-up mammogram in 6 months.")),
            4: w.pick(("Ultrasound-guided core biopsy recommended.", "Tissue sampling is recommended.",
                       "Stereotactic biopsy recommended.")),
            5: w.pick(("Biopsy and multidisciplinary discussion.", "Core biopsy recommended, surgical consultation.")),
            6: w.pick(("Surgical management as planned.", "Pre-operative staging; tumour board.")),
            }[worst]


def _history(w: _Writer, exam: ExamPlan) -> str:
    worst = max(b.acr for b in exam.breasts.values())
    options = ["Screening.", "Routine screening mammogram.", "Family history of breast cancer.",
               "Annual screening, no complaints."]
    if worst >= 4:
        options += ["Palpable lump.", "Recall from screening.", "Clinical finding, please evaluate."]
    if worst == 6:
        options = ["Known carcinoma, pre-operative staging.", "Recently diagnosed breast cancer."]
    return w.pick(options)


def _technique(w: _Writer, exam: ExamPlan) -> str:
    views = {(i.laterality, i.view) for i in exam.images}
    missing = [f"{SIDE_WORD[lat]} {v}" for lat in "RL" for v in ("CC", "MLO")
               if (lat, v) not in views and not (v == "MLO" and (lat, "ML") in views)]
    text = w.pick(("Bilateral digital mammography, CC and MLO views.", "Digital mammography, 2 views each side.",
                   "Full-field digital mammography.", "Standard two-view mammography."))
    if missing:
        text += f" The {missing[0]} view was not obtained."
    if any(i.view == "ML" for i in exam.images):
        text += " Lateral (ML) view instead of MLO."
    return text


def _typos(w: _Writer, text: str, p: float) -> str:
    for word, wrong in TYPOS.items():
        if word in text and w.chance(p):
            text = text.replace(word, wrong, 1)
    return text


def write_report(exam: ExamPlan, prof: CohortProfile, rng: np.random.Generator) -> tuple[Report | None, ReportLabels]:
    w = _Writer(rng)
    labels = ReportLabels()
    if w.chance(prof.p_report_missing):
        return None, labels
    labels.present = True
    style = w.pick(("us", "us", "eu", "eu", "prose"))
    labels.style = style
    european = style == "eu"
    give_assessment = not w.chance(prof.p_assessment_omitted)
    give_density = not w.chance(prof.p_density_omitted)
    typo_rate = 0.15 if w.chance(0.4) else 0.0
    breasts: dict[str, BreastPlan] = exam.breasts
    order = ("R", "L") if w.chance(0.7) else ("L", "R")

    # which breasts the assessment covers
    assessed = {"R", "L"} if give_assessment else set()
    if give_assessment and breasts["R"].acr != breasts["L"].acr and w.chance(prof.p_one_breast_only):
        assessed = {max(("R", "L"), key=lambda s: breasts[s].acr)}
    addendum_side = None
    if give_assessment and len(assessed) == 2 and w.chance(prof.p_addendum):
        addendum_side = w.pick(("R", "L"))

    def initial_category(lat: str) -> int:
        true = breasts[lat].acr
        if lat != addendum_side:
            return true
        if true == 6:          # suspicious at reading, the biopsy result arrives later
            return 5
        if true >= 4:
            return w.pick((0, 3))
        return 0 if true != 2 else w.pick((0, 3))

    # --- findings ------------------------------------------------------------------------
    per_finding_category = give_assessment and w.chance(0.6)
    findings_parts: list[str] = []
    hedged = False
    for lat in order:
        b = breasts[lat]
        if not b.findings:
            body = w.negative_findings()
        else:
            cats = {f.category for f in b.findings}
            show = per_finding_category and lat in assessed and lat != addendum_side and len(cats) > 1
            body = " ".join(w.finding(f, show, neutral=lat not in assessed) for f in b.findings)
            hedged |= lat in assessed and any(f.category in (3, 4) for f in b.findings)
        label = w.pick((f"{SIDE_WORD[lat].capitalize()} breast: ", f"{SIDE_WORD[lat].upper()}: ",
                        f"{lat}: ", f"{SIDE_WORD[lat].capitalize()}: "))
        findings_parts.append(label + body)
    if all(not breasts[s].findings for s in "RL") and w.chance(0.5):
        findings_parts = [w.pick(("Bilateral: ", "Both breasts: ", "")) + w.negative_findings()]
    labels.hedged = hedged

    # --- impression ------------------------------------------------------------------------
    impression = ""
    if give_assessment:
        # fixed order: set iteration order varies between processes and would reorder rng draws
        cats = {lat: initial_category(lat) for lat in ("R", "L") if lat in assessed}
        if len(assessed) == 2 and cats["R"] == cats["L"] and cats["R"] != 0 and w.chance(0.6):
            pattern = w.pick(("{c} bilaterally", "{c}, both breasts", "Bilateral {c}", "{c}"))
            impression = pattern.format(c=w.category(cats["R"], named=pattern.endswith("{c}"))) + "."
            if w.chance(0.2):
                impression = w.assessment(cats["R"])
        else:
            parts = []
            sep = w.pick(("per-side", "inline", "short"))
            for lat in order:
                if lat not in assessed:
                    continue
                if sep == "per-side":
                    parts.append(f"{SIDE_WORD[lat].capitalize()} breast: {w.assessment(cats[lat])}")
                elif sep == "inline":
                    parts.append(f"{w.category(cats[lat], named=False)} {SIDE_WORD[lat]}")
                else:
                    parts.append(f"{lat}: {w.category(cats[lat])}")
            impression = (" ".join(parts) if sep == "per-side" else (", " if sep == "inline" else " / ").join(parts) + ".")
        for lat in cats:
            labels.acr[lat] = cats[lat] if cats[lat] != 0 else None

    # --- density ---------------------------------------------------------------------------
    density_text = ""
    if give_density:
        dr, dl = breasts["R"].density, breasts["L"].density
        if dr != dl:
            density_text = w.density_per_breast(dr, dl, european)
            labels.density = {"R": dr, "L": dl}
        else:
            as_range = dr != "A" and w.chance(0.12)
            density_text = w.density(dr, european, as_range)
            labels.density = {"R": dr, "L": dl}
            labels.density_range = as_range

    # --- addendum --------------------------------------------------------------------------
    addendum = ""
    if addendum_side is not None:
        final = breasts[addendum_side].acr
        when = day_offset(exam.study_date, int(rng.integers(1, 15))).isoformat()
        head = w.pick(("ADDENDUM:", "Addendum:", f"Addendum ({when}):", f"ADDENDUM {when}:"))
        reason = ("Biopsy result received (invasive carcinoma)" if final == 6 else
                  w.pick(("After additional views", "After targeted ultrasound",
                          "Following comparison with outside priors", "After review in the consensus conference")))
        addendum = w.pick((f"{head} {reason}, the {SIDE_WORD[addendum_side]} breast is reclassified as {w.category(final)}.",
                           f"{head} {reason}: {SIDE_WORD[addendum_side]} breast final assessment {w.category(final)}.",
                           f"{head} {SIDE_WORD[addendum_side].capitalize()} breast category revised to {w.category(final)} ({reason.lower()})."))
        labels.acr[addendum_side] = final
        labels.revised_by_addendum[addendum_side] = True
    elif give_assessment and w.chance(0.03):
        addendum = w.pick(("ADDENDUM:", "Addendum:")) + " Outside priors reviewed; no change in assessment."

    worst = max(b.acr for b in breasts.values())
    sections: list[tuple[str, str]] = []
    if w.chance(0.55):
        sections.append(("history", _history(w, exam)))
    if w.chance(0.45):
        sections.append(("technique", _technique(w, exam)))
    if w.chance(0.45):
        prior_year = exam.study_date.year - int(rng.integers(1, 4))
        comparison = w.pick(("None.", "No prior studies available.", f"Prior mammogram {prior_year}.",
                             "Compared with previous examination, stable."))
        if give_assessment and w.chance(0.12):
            # a category from a *previous* study: a careful reader does not take it for today's
            comparison = f"Prior mammogram {prior_year} (then {w.category(w.pick((1, 2)), named=False)})."
        sections.append(("comparison", comparison))
    density_first = w.chance(0.7)
    if density_text and density_first:
        sections.append(("density", density_text))
    sections.append(("findings", " ".join(findings_parts)))
    if density_text and not density_first:
        sections.append(("density", density_text))
    if impression:
        sections.append(("impression", impression))
    if w.chance(0.65):
        sections.append(("recommendation", _recommendation(w, worst)))

    typed = [(name, _typos(w, text, typo_rate) if name in ("history", "technique", "findings", "recommendation")
              else text) for name, text in sections]
    if style == "prose":
        text = " ".join(body if name != "density" else f"Density {body}" for name, body in typed
                        if name not in ("history", "comparison"))
    else:
        joiner = "\n" if w.chance(0.75) else " "
        text = joiner.join(f"{w.pick(HEADINGS[name])} {body}" for name, body in typed)
    if addendum:
        text += "\n\n" + addendum
    return Report(exam.accession, exam.patient_id, exam.study_date.isoformat(), text,
                  exam.reader_id, exam.reader_level), labels


# One step a second reader may differ by, per category (6 = proven cancer: nobody disagrees)
_DISCORDANT_STEP = {1: (2,), 2: (1, 3), 3: (2, 4), 4: (3, 5), 5: (4,)}


def second_reading(exam: ExamPlan, prof: CohortProfile, rng: np.random.Generator
                   ) -> tuple[Report, ReportLabels, str | None]:
    """The second reader's report of a double-read exam: (report, labels, discordant side or None).

    The second reader writes complete reports (assessment and density, no addendum); in about
    a third of exams they grade one breast one category away from the reading of record.
    """
    if exam.second_reader is None:
        raise ValueError("second_reading needs an exam with a second reader")
    breasts = dict(exam.breasts)
    discordant = None
    candidates = [lat for lat in ("R", "L") if breasts[lat].acr in _DISCORDANT_STEP]
    if candidates and rng.random() < 0.35:
        discordant = candidates[int(rng.integers(0, len(candidates)))]
        b = breasts[discordant]
        steps = _DISCORDANT_STEP[b.acr]
        new = steps[int(rng.integers(0, len(steps)))]
        if b.findings:
            top = max(range(len(b.findings)), key=lambda i: b.findings[i].category)
            findings = tuple(replace(f, category=new if i == top else min(f.category, new))
                             for i, f in enumerate(b.findings))
        else:
            findings = ()
        breasts[discordant] = replace(b, acr=new, findings=findings)
    reader_id, level = exam.second_reader
    second = replace(exam, breasts=breasts, reader_id=reader_id, reader_level=level)
    complete = replace(prof, p_report_missing=0.0, p_assessment_omitted=0.0, p_density_omitted=0.0,
                       p_one_breast_only=0.0, p_addendum=0.0)
    report, labels = write_report(second, complete, rng)
    assert report is not None
    return report, labels, discordant
