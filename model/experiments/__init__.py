"""The paper's experiments (section 3.3, Tables 2–9) and the CPU bench protocol, by concern:

* :mod:`label_mining.training_policies` — :class:`LabelPlan`: how a run changes its training labels
  (uncertainty policy, fewer labels, fewer samples, noisy labels, ACR-derived malignancy).
* :mod:`.budgets` — how much compute (:data:`BUDGETS`: demo, small, bench, paper).
* :mod:`.specs` — one table row (:class:`RunSpec`) and which rows each table needs (:data:`EXPERIMENTS`).
* :mod:`.jobs` — content-addressed :class:`TrainJob` / :class:`EvalJob` a row expands into at a seed.
* :mod:`.runner` — the on-disk cache of models and predictions and :func:`run_experiments`.
* :mod:`.parallel` — trainings side by side in processes (``mammo-mtl experiments --jobs N``).
* :mod:`.tables` and :mod:`.seeds` — cells in the paper's layouts; mean ± sd and tests across seeds.
* :mod:`.runs` and :mod:`.evaluation` — the runs table and the evaluation report of the assets' models.

Deviations from the paper, on purpose: the "Wu et al." column needs the authors' pre-trained
weights (not shipped, no network) and is left out; cells are mean ± sd over *seeds* (the paper
averages its 10 best epochs of one run, which mostly measures epoch-to-epoch noise, and picks
them on the test set); the best epoch is chosen by ``model.train`` — on hmi ``val`` when the
manifests have one — never on a test set. Table 4's and Table 6's breastbin-only rows keep the
multi-level fusion, so they vary the tasks alone. Noisy labels (NL) put excluded labels back with a
*random* class; MixMatch is plain hard pseudo-labelling from a model trained on half the labels.

Everything is re-exported here, so ``from model import experiments as X`` keeps working.
"""

from label_mining.training_policies import (  # noqa: F401
    DERIVED_SOURCES, EXPERIMENT_SOURCE, LabelPlan, UncertaintyPolicy, apply_label_plan, apply_uncertainty_policy,
    derive_malignancy_from_acr, label_counts)
from model.experiments.budgets import BUDGETS, DATASETS, Budget, budget  # noqa: F401
from model.experiments.evaluation import evaluate_every_run, evaluate_runs, verdict  # noqa: F401
from model.experiments.jobs import EvalJob, TrainJob, _digest, expand, frame_hash, plan_identity, train_config_for  # noqa: F401
from model.experiments.runner import (  # noqa: F401
    JOB_FILE, TRUTH_COLUMNS, Executor, Runner, attach_truth, pseudo_labelled, run_experiments, table_plan)
from model.experiments.runs import (  # noqa: F401
    RUN_ROLES, RUNS_COLUMNS, all_runs, append_runs, latest_runs, run_record, runs_table_path)
from model.experiments.specs import (  # noqa: F401
    BENCH_EXPERIMENTS, BENCH_PROTOCOL, EXPERIMENTS, FINETUNE_CLASS_WEIGHTS, PAPER_TABLES, REFERENCE, TABLE_ALIASES,
    RunSpec, TableSpec, finetune_spec, reference_name, resolve_tables)
from model.experiments.tables import build_table, table_grid, table_markdown, write_tables  # noqa: F401
