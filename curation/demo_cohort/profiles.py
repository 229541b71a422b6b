"""The three demo cohorts, shaped like the paper's datasets (Table 1 and section 3.1).

* ``hmi`` — multi-vendor (Fujifilm, GE, Hologic, Planmed), balanced (about half of the
  breasts malignant), every report carries an assessment and a density: train/test.
* ``inb`` — one vendor (Siemens, as INbreast), about 25 % malignant breasts, fully
  labelled: external test only.
* ``vtb`` — mostly Hologic with some Fujifilm/GE and a few rarer systems, mostly benign
  (donors), labels often absent: fine-tuning.

Category mixes follow Table 1 (hmi: BI-RADS 1/2 ≈ 40/58 % of benign, 6 ≈ half of the
malignant; inb: 67/220/23 benign, 43/49/8 malignant), density mixes likewise.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CohortProfile:
    name: str
    vendors: dict[str, float]               # manufacturer -> share of patients
    p_patient_malignant: float              # patient has >= 1 malignant breast
    p_bilateral_cancer: float               # ... given malignant, both breasts
    benign_acr: dict[int, float]            # BI-RADS mix of benign breasts
    malignant_acr: dict[int, float]         # BI-RADS mix of malignant breasts
    p_biopsy_benign_acr4: float             # BI-RADS 4 lesions that turn out benign at biopsy
    density: dict[str, float]
    p_missing_view: float                   # exam lacks one of its four views
    p_ml_view: float                        # a breast imaged ML instead of MLO
    p_for_processing: float                 # exam sent as For Processing images
    p_report_missing: float                 # exam with no report row at all
    p_assessment_omitted: float             # report gives no BI-RADS category
    p_density_omitted: float                # report gives no breast composition
    p_one_breast_only: float                # report assesses only the breast with findings
    p_addendum: float                       # addendum revises one breast's category
    p_pathology_malignant: float            # malignant breast with a biopsy/surgery row
    p_followup_benign: float                # benign breast with a negative follow-up row
    p_double_reading: float                 # exam read by a second (junior) reader too: a second report row
    institution: str


PROFILES: dict[str, CohortProfile] = {
    "hmi": CohortProfile(
        name="hmi",
        vendors={"FUJIFILM Corporation": 0.25, "GE Healthcare": 0.25, "HOLOGIC, Inc.": 0.25, "Planmed": 0.25},
        p_patient_malignant=0.80, p_bilateral_cancer=0.25,
        benign_acr={1: 0.40, 2: 0.57, 3: 0.03},
        malignant_acr={4: 0.19, 5: 0.29, 6: 0.52},
        p_biopsy_benign_acr4=0.10,
        density={"A": 0.18, "B": 0.46, "C": 0.30, "D": 0.06},
        p_missing_view=0.10, p_ml_view=0.03, p_for_processing=0.03,
        p_report_missing=0.0, p_assessment_omitted=0.0, p_density_omitted=0.0, p_one_breast_only=0.0,
        p_addendum=0.08, p_pathology_malignant=1.0, p_followup_benign=0.5, p_double_reading=0.08,
        institution="ZZ-DEMO Helvetia Mammo Institute",
    ),
    "inb": CohortProfile(
        name="inb",
        vendors={"SIEMENS": 1.0},
        p_patient_malignant=0.45, p_bilateral_cancer=0.10,
        benign_acr={1: 0.22, 2: 0.71, 3: 0.07},
        malignant_acr={4: 0.43, 5: 0.49, 6: 0.08},
        p_biopsy_benign_acr4=0.15,
        density={"A": 0.33, "B": 0.36, "C": 0.24, "D": 0.07},
        p_missing_view=0.05, p_ml_view=0.02, p_for_processing=0.0,
        p_report_missing=0.0, p_assessment_omitted=0.0, p_density_omitted=0.0, p_one_breast_only=0.0,
        p_addendum=0.06, p_pathology_malignant=0.9, p_followup_benign=0.3, p_double_reading=0.0,
        institution="ZZ-DEMO Porto Breast Centre",
    ),
    "vtb": CohortProfile(
        name="vtb",
        vendors={"HOLOGIC, Inc.": 0.85, "FUJIFILM Corporation": 0.05, "GE Healthcare": 0.05, "Philips Medical Systems": 0.05},
        p_patient_malignant=0.06, p_bilateral_cancer=0.0,
        benign_acr={1: 0.55, 2: 0.42, 3: 0.03},
        malignant_acr={4: 0.50, 5: 0.40, 6: 0.10},
        p_biopsy_benign_acr4=0.25,
        density={"A": 0.10, "B": 0.45, "C": 0.38, "D": 0.07},
        p_missing_view=0.12, p_ml_view=0.05, p_for_processing=0.02,
        p_report_missing=0.05, p_assessment_omitted=0.40, p_density_omitted=0.30, p_one_breast_only=0.15,
        p_addendum=0.03, p_pathology_malignant=0.5, p_followup_benign=0.05, p_double_reading=0.04,
        institution="ZZ-DEMO Indiana Tissue Bank Imaging",
    ),
}

COHORTS = tuple(PROFILES)


def profile(cohort: str) -> CohortProfile:
    try:
        return PROFILES[cohort]
    except KeyError:
        raise ValueError(f"cohort must be one of {', '.join(COHORTS)}; got {cohort!r}") from None
