"""What the generator *means* for one patient, before any pixel or word is produced.

The plan is the single source of truth: pixels (``render``), DICOM headers
(``dicom_writer``), the report (``reports``), pathology rows (``pathology``) and the truth
table (``truth``) are all projections of it, so they cannot disagree by accident — only
where a defect or a report quirk is planted on purpose.

Clinical rules encoded here:

* a breast is malignant when its lesion is a cancer; its BI-RADS category is 4, 5 or 6
  (6 = known biopsy-proven malignancy). A few BI-RADS 4 breasts are benign at biopsy
  (BI-RADS 4 means 2–95 % likelihood of malignancy), so report-derived and
  pathology-derived labels disagree there, as they do in practice;
* benign breasts are BI-RADS 1 (no finding), 2 (benign finding) or 3 (probably benign);
* the breast's category is the highest category among its findings;
* a negative follow-up confirms benignity only after >= 24 months.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from .profiles import CohortProfile
from .seeding import rng_for

LATERALITIES = ("R", "L")
DENSITIES = ("A", "B", "C", "D")
FOLLOW_UP_CONFIRMS_DAYS = 730      # 24 months of stable imaging = benign (BI-RADS follow-up practice)

VENDOR_MODELS = {
    "FUJIFILM Corporation": "AMULET Innovality",
    "GE Healthcare": "Senographe Pristina",
    "HOLOGIC, Inc.": "Selenia Dimensions",
    "Planmed": "Planmed Clarity 2D",
    "SIEMENS": "MAMMOMAT Inspiration",
    "Philips Medical Systems": "MicroDose SI",
}

# (reader_id, reader_level); EXT readers are outside radiologists whose seniority is not on file
READERS = (
    ("RAD01", "senior"), ("RAD02", "senior"), ("RAD03", "senior"), ("RAD04", "junior"),
    ("RAD05", "junior"), ("RAD06", "resident"), ("RAD07", "resident"), ("RAD08", "senior"),
    ("EXT01", "unknown"), ("EXT02", "unknown"),
)
READER_WEIGHTS = (0.15, 0.13, 0.12, 0.13, 0.12, 0.10, 0.10, 0.05, 0.05, 0.05)

_SYLLABLES = ("zor", "qua", "vex", "lum", "tar", "bri", "kel", "dro", "mip", "sny", "wal", "ox", "fen", "gru", "yat")


@dataclass(frozen=True)
class Finding:
    kind: str          # mass_benign | mass_malignant | mass_indeterminate | calc_malignant | calc_benign
    category: int      # BI-RADS category the reader gives this finding
    depth: float       # 0 = chest wall, 1 = nipple
    across: float      # -1 = top edge of the breast in the image, +1 = bottom edge
    size: float        # lesion radius as a fraction of the image height
    clock: int         # o'clock position for the report
    shape_seed: int

    @property
    def malignant(self) -> bool:
        return self.kind in ("mass_malignant", "calc_malignant")


@dataclass(frozen=True)
class PathologyEvent:
    result: str        # malignant | benign | high_risk
    source: str        # biopsy | surgery | follow_up
    days_after_study: int


@dataclass(frozen=True)
class BreastPlan:
    laterality: str
    malignant: int
    acr: int
    density: str
    findings: tuple[Finding, ...]
    pathology: tuple[PathologyEvent, ...] = ()

    @property
    def pathology_malignant(self) -> int | None:
        """What pathology/follow-up establishes; None when nothing conclusive exists."""
        if any(e.result == "malignant" for e in self.pathology):
            return 1
        if any(e.source in ("biopsy", "surgery") for e in self.pathology):
            return 0
        if any(e.source == "follow_up" and e.days_after_study >= FOLLOW_UP_CONFIRMS_DAYS for e in self.pathology):
            return 0
        return None


@dataclass(frozen=True)
class ImagePlan:
    laterality: str
    view: str          # CC | MLO | ML
    instance: int      # 1-based instance number within the exam


@dataclass(frozen=True)
class ExamPlan:
    cohort: str
    index: int
    patient_id: str
    patient_name: str
    birth_date: date
    accession: str
    study_date: date
    study_time: str
    manufacturer: str
    model: str
    institution: str
    referring: str
    for_processing: bool
    reader_id: str
    reader_level: str
    second_reader: tuple[str, str] | None = None     # (reader_id, level) when double-read
    breasts: dict[str, BreastPlan] = field(default_factory=dict)
    images: tuple[ImagePlan, ...] = ()


def _choice(rng: np.random.Generator, weights: dict):
    keys = list(weights)
    p = np.asarray([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _fake_word(rng: np.random.Generator, n: int) -> str:
    return "".join(_SYLLABLES[int(i)] for i in rng.integers(0, len(_SYLLABLES), n)).capitalize()


def _position(rng: np.random.Generator) -> tuple[float, float, int]:
    depth = float(rng.uniform(0.25, 0.75))
    across = float(rng.uniform(-0.55, 0.55))
    clock = int(rng.integers(1, 13))
    return depth, across, clock


def _finding(rng: np.random.Generator, kind: str, category: int) -> Finding:
    depth, across, clock = _position(rng)
    size = {
        "mass_malignant": rng.uniform(0.045, 0.075),
        "mass_indeterminate": rng.uniform(0.035, 0.055),
        "mass_benign": rng.uniform(0.025, 0.045),
        "calc_malignant": rng.uniform(0.025, 0.04),   # cluster radius
        "calc_benign": rng.uniform(0.08, 0.14),       # scattered coarse calcifications
    }[kind]
    return Finding(kind, category, depth, across, float(size), clock, int(rng.integers(0, 2**31 - 1)))


def _malignant_findings(rng: np.random.Generator, acr: int) -> list[Finding]:
    if acr == 4:
        main = "calc_malignant" if rng.random() < 0.5 else "mass_malignant"
    else:
        main = "mass_malignant" if rng.random() < 0.75 else "calc_malignant"
    out = [_finding(rng, main, acr)]
    if main == "mass_malignant" and rng.random() < 0.3:
        out.append(_finding(rng, "calc_malignant", acr))       # mass with associated calcifications
    if rng.random() < 0.3:                                     # an unrelated benign finding too
        out.append(_finding(rng, "calc_benign" if rng.random() < 0.6 else "mass_benign", 2))
    return out


def _benign_findings(rng: np.random.Generator, acr: int) -> list[Finding]:
    if acr == 1:
        return []
    if acr == 2:
        out = [_finding(rng, "mass_benign" if rng.random() < 0.5 else "calc_benign", 2)]
        if rng.random() < 0.2:
            out.append(_finding(rng, "calc_benign" if out[0].kind == "mass_benign" else "mass_benign", 2))
        return out
    if acr == 3:
        out = [_finding(rng, "mass_benign", 3)]
        if rng.random() < 0.3:
            out.append(_finding(rng, "calc_benign", 2))
        return out
    raise ValueError(f"benign BI-RADS must be 1-3, got {acr}")


def _pathology(rng: np.random.Generator, prof: CohortProfile, malignant: int, acr: int) -> tuple[PathologyEvent, ...]:
    if malignant:
        if rng.random() >= prof.p_pathology_malignant:
            return ()
        events = [PathologyEvent("malignant", "biopsy", int(rng.integers(5, 30)))]
        if rng.random() < 0.5:
            events.append(PathologyEvent("malignant", "surgery", int(rng.integers(35, 90))))
        return tuple(events)
    if acr >= 4:  # suspicious but benign: biopsy always done
        result = "high_risk" if rng.random() < 0.25 else "benign"
        return (PathologyEvent(result, "biopsy", int(rng.integers(5, 30))),)
    if rng.random() < prof.p_followup_benign:
        # most follow-ups reach the 24-month mark; some stop earlier and confirm nothing
        days = int(rng.integers(730, 1100)) if rng.random() < 0.85 else int(rng.integers(180, 600))
        return (PathologyEvent("benign", "follow_up", days),)
    return ()


def plan_exam(prof: CohortProfile, seed: int, index: int) -> ExamPlan:
    rng = rng_for(seed, prof.name, index, "plan")
    phi = rng_for(seed, prof.name, index, "phi")

    manufacturer = _choice(rng, prof.vendors)
    base_density = _choice(rng, prof.density)
    malignant_sides: set[str] = set()
    if rng.random() < prof.p_patient_malignant:
        first = LATERALITIES[int(rng.integers(0, 2))]
        malignant_sides.add(first)
        if rng.random() < prof.p_bilateral_cancer:
            malignant_sides.update(LATERALITIES)

    breasts: dict[str, BreastPlan] = {}
    for lat in LATERALITIES:
        density = base_density
        if rng.random() < 0.08:  # left/right composition differs by one step now and then
            i = DENSITIES.index(base_density) + (1 if rng.random() < 0.5 else -1)
            density = DENSITIES[min(max(i, 0), 3)]
        if lat in malignant_sides:
            acr = int(_choice(rng, prof.malignant_acr))
            if acr == 4 and rng.random() < prof.p_biopsy_benign_acr4:
                malignant = 0
                findings = [_finding(rng, "mass_indeterminate", 4)]
            else:
                malignant = 1
                findings = _malignant_findings(rng, acr)
        else:
            acr = int(_choice(rng, prof.benign_acr))
            malignant = 0
            findings = _benign_findings(rng, acr)
        breasts[lat] = BreastPlan(lat, malignant, acr, density, tuple(findings),
                                  _pathology(rng, prof, malignant, acr))

    views: list[tuple[str, str]] = []
    for lat in LATERALITIES:
        lateral = "ML" if rng.random() < prof.p_ml_view else "MLO"
        views += [(lat, "CC"), (lat, lateral)]
    if rng.random() < prof.p_missing_view:
        views.pop(int(rng.integers(0, len(views))))
    images = tuple(ImagePlan(lat, view, i + 1) for i, (lat, view) in enumerate(views))

    study_date = date(2014, 1, 6) + timedelta(days=int(rng.integers(0, 6 * 365)))
    age_days = int(rng.integers(40 * 365, 76 * 365))
    reader_i = int(rng.choice(len(READERS), p=np.asarray(READER_WEIGHTS) / sum(READER_WEIGHTS)))
    for_processing = bool(rng.random() < prof.p_for_processing)

    # Double reading (European screening practice): the reading of record is a senior's; the
    # second reader is a junior or resident whose report may differ by one category.
    second_reader = None
    if rng.random() < prof.p_double_reading:
        seniors = [r for r in READERS if r[1] == "senior"]
        if READERS[reader_i][1] != "senior":
            reader_i = READERS.index(seniors[int(rng.integers(0, len(seniors)))])
        trainees = [r for r in READERS if r[1] in ("junior", "resident")]
        second_reader = trainees[int(rng.integers(0, len(trainees)))]

    # Fake PHI: deliberately distinctive ("ZZ"-prefixed, invented syllables) so a PHI scan
    # of the pipeline's outputs can search for every planted value without false hits.
    cohort_tag = prof.name.upper()
    patient_id = f"ZZ{cohort_tag}{index + 1:05d}{int(phi.integers(10, 100))}"
    accession = f"ACZ{cohort_tag}{int(phi.integers(100, 1000))}{index + 1:06d}"
    patient_name = f"ZZDEMO^{_fake_word(phi, 3)}^{_fake_word(phi, 2)}"
    referring = f"ZZREF^{_fake_word(phi, 3)}^{_fake_word(phi, 2)}"
    study_time = f"{int(phi.integers(7, 18)):02d}{int(phi.integers(0, 60)):02d}{int(phi.integers(0, 60)):02d}"

    return ExamPlan(
        cohort=prof.name, index=index, patient_id=patient_id, patient_name=patient_name,
        birth_date=study_date - timedelta(days=age_days), accession=accession, study_date=study_date,
        study_time=study_time, manufacturer=manufacturer, model=VENDOR_MODELS[manufacturer],
        institution=prof.institution, referring=referring, for_processing=for_processing,
        reader_id=READERS[reader_i][0], reader_level=READERS[reader_i][1], second_reader=second_reader,
        breasts=breasts, images=images,
    )
