"""Training as Dagster assets: ``mtl_model``, ``baseline_models``, ``finetuned_model``.

Thin glue. Each asset turns its typed run config into a :class:`model.training_job.JobRequest`,
launches ``python -m model.training_job`` through the ``pipes`` resource (Dagster Pipes
subprocess: TensorFlow's memory and crashes stay out of the code server), then appends what was
trained to ``$MAMMO_HOME/models/runs.parquet`` and returns the metadata (model path, manifest hash,
config hash, metrics) that lets runs be compared in the UI.

One training at a time: every training asset takes ``pool="training"`` (limit it in the instance to
queue runs) *and* holds an exclusive file lock, ``$MAMMO_HOME/models/training.lock``, while its
process runs — so ``mtl_model`` and ``baseline_models`` never train concurrently even inside one
materialisation with the multiprocess executor, whatever the instance's pool settings.
"""


import contextlib
import fcntl
import hashlib
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, Optional

import dagster as dg
from pydantic import Field

from curation.tasks import ALL_MODEL_TASKS
from model import experiments as X
from pipelines.resources import MammoHomeResource

DEMO = X.BUDGETS["demo"]
TRAINING_POOL = "training"
# a crashed or OOM-killed training process is retried once, after a pause (not for bad config:
# config errors are raised before the subprocess starts and fail without retry)
TRAINING_RETRY = dg.RetryPolicy(max_retries=1, delay=30)
UPSTREAM = ["split_manifests"]


class _TrainingBase(dg.Config):
    height: int = Field(DEMO.height, description="image height H (multiple of 64; paper: 2048)")
    width: int = Field(DEMO.width, description="image width W (multiple of 64); wider images are cropped on the right")
    epochs: int = Field(DEMO.epochs, description="training epochs (paper: 100)")
    batch_size: int = Field(DEMO.batch_size)
    learning_rate: float = Field(DEMO.learning_rate, description="Adam learning rate (paper: 1e-3)")
    seed: int = Field(0, description="seed of weights, augmentation and label subsampling")
    uncertainty_policy: Literal["weight", "ignore", "certain", "exclude"] = Field(
        "weight", description="weight: loss weight 1-u (paper eq. 2); ignore: labels with u > 0 are missing "
                              "(label_mining.handling's meaning); certain: every label weight 1; "
                              "exclude: former name of ignore")
    retrain: bool = Field(False, description="retrain even if a model with this exact configuration and "
                                             "manifest exists (otherwise it is reused)")

    def budget(self, **extra) -> X.Budget:
        return DEMO.model_copy(update={"name": "asset", "height": self.height, "width": self.width,
                                       "epochs": self.epochs, "batch_size": self.batch_size,
                                       "learning_rate": self.learning_rate, **extra})


class MTLTrainingConfig(_TrainingBase):
    tasks: list[str] = Field(list(ALL_MODEL_TASKS), description="enabled tasks: breastbin, acr, density, view, rec")
    label_fraction_kept: float = Field(1.0, description="fraction of breasts keeping their labels of label_fraction_tasks")
    label_fraction_tasks: list[str] = Field(["breastbin"], description="tasks whose labels are subsampled")

    def spec(self) -> X.RunSpec:
        return X.RunSpec(name="mtl", tasks=tuple(self.tasks), labels=X.LabelPlan(
            uncertainty_policy=self.uncertainty_policy, keep_fraction=self.label_fraction_kept,
            keep_tasks=tuple(self.label_fraction_tasks)))


class BaselineTrainingConfig(_TrainingBase):
    ensemble_size: int = Field(DEMO.ensemble_size, ge=1,
                               description="models in the ensemble (paper: 5); the first is the baseline; "
                                           "1: no ensemble, only the baseline and its MC-dropout")
    mc_passes: int = Field(DEMO.mc_passes, description="MC-dropout forward passes (paper: 10)")

    def specs(self) -> list[X.RunSpec]:
        plan = X.LabelPlan(uncertainty_policy=self.uncertainty_policy)
        kw = dict(tasks=("breastbin",), architecture="single_task", labels=plan)
        specs = [X.RunSpec(name="baseline", role="single_task", **kw)]
        if self.ensemble_size > 1:
            specs.append(X.RunSpec(name="ensemble", role="ensemble", **kw))
        return specs + [X.RunSpec(name="mc_dropout", role="mc_dropout", **kw)]


class FinetuneConfig(dg.Config):
    u_const: Optional[float] = Field(
        None, description="uncertainty of the ACR-derived malignancy labels; empty: the label policy's own "
                          "(label_mining derived_u combined with the report's doubt). Paper: 0-0.9, best 0.9")
    aux_u_const: Optional[float] = Field(
        None, description="uncertainty of the vtb acr/density/view labels; empty: the label policy's. Paper: 0.5")
    acr_high_weight: float = Field(20.0, description="class weight of ACR 4-5 (and of derived malignant) samples")
    epochs: int = Field(DEMO.finetune_epochs, description="fine-tuning epochs (paper: 20)")
    learning_rate: float = Field(DEMO.finetune_learning_rate,
                                 description="Adam learning rate; lower than from scratch so the pre-trained "
                                             "features are adapted, not overwritten")
    retrain: bool = False

    def spec(self, init_from: str) -> X.RunSpec:
        w = self.acr_high_weight
        return X.RunSpec(name="finetuned", role="finetune", train_on=("vtb", "finetune"), init_from=init_from,
                         class_weights={"breastbin": (1.0, w), "acr": (1.0, 1.0, 1.0, w, w, 1.0)},
                         labels=X.LabelPlan(acr_derived_u=self.u_const, aux_u_const=self.aux_u_const))


# ------------------------------------------------------------------------------------------------
LOCK_FILE = "training.lock"


@contextlib.contextmanager
def one_training_at_a_time(home, log=None):
    """Hold ``models/training.lock`` (exclusive, blocking) for the duration of one training process."""
    path = home.models / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if log:
                log(f"another training holds {path}; waiting for it to finish")
            start = time.monotonic()
            fcntl.flock(fh, fcntl.LOCK_EX)
            if log:
                log(f"training lock acquired after {time.monotonic() - start:.0f}s")
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _validated(fn, what: str):
    """Build a domain config; a bad value fails here, before any process starts, naming the field."""
    try:
        return fn()
    except ValueError as exc:
        raise dg.Failure(description=f"invalid {what} run config: {exc}", allow_retries=False) from exc


def launch_training(context: dg.AssetExecutionContext, pipes: dg.PipesSubprocessClient, home, asset: str,
                    specs: list[X.RunSpec], outputs: dict[str, str], budget: X.Budget, seed: int,
                    retrain: bool) -> dg.MaterializeResult:
    """Run the training process for ``specs`` and record what it produced."""
    from model.config import TrainConfig
    from model.training_job import JobRequest, SUMMARY_FILE

    req = JobRequest(action="runs", home=str(home.root), budget=budget, specs=specs, outputs=outputs, seed=seed,
                     retrain=retrain)
    # validate every TrainConfig the process will build, so a bad height/tasks combination fails now
    by_name = {s.name: s for s in specs}
    for s in specs:
        if s.name in outputs:
            ev = _validated(lambda s=s: X.expand(s, budget, seed, by_name, {}), asset)
            for job in ev.members:
                _validated(lambda job=job: TrainConfig.model_validate(job.train_config), asset)
    body = req.model_dump_json(indent=2)
    req_path = home.models / "requests" / f"{asset}-{hashlib.sha256(body.encode()).hexdigest()[:12]}.json"
    req_path.parent.mkdir(parents=True, exist_ok=True)
    req_path.write_text(body)
    with one_training_at_a_time(home, context.log.info):
        invocation = pipes.run(command=[sys.executable, "-m", "model.training_job", str(req_path)], context=context,
                               env={"MAMMO_HOME": str(home.root), "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONHASHSEED": "0"})
        reported = invocation.get_materialize_result()

    # the process wrote summary.json under each row's eval key; recompute the keys from the manifests
    from model.training_job import load_manifests

    manifests = load_manifests(home, [tuple(s.train_on) for s in specs])
    hashes = {k: X.frame_hash(v) for k, v in manifests.items()}
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    records, summaries = [], {}
    for s in specs:
        if s.name not in outputs:
            continue
        ev = X.expand(s, budget, seed, by_name, hashes)
        path = home.models / ev.key / SUMMARY_FILE
        if not path.is_file():
            raise dg.Failure(description=f"the training process finished but wrote no {path}")
        summaries[outputs[s.name]] = json.loads(path.read_text())
        records.append(X.run_record(summaries[outputs[s.name]], asset=asset, created_at=now,
                                    dagster_run_id=context.run_id))
    X.append_runs(home.models, records)

    md: dict = dict(reported.metadata or {})
    for role, summ in summaries.items():
        model_path = summ["model_paths"][0]
        md[f"{role}/model_path"] = dg.MetadataValue.path(model_path)
        md[f"{role}/run_id"] = summ["eval_key"]
        md[f"{role}/manifest_hash"] = summ["manifest_hash"]
        md[f"{role}/config_hash"] = summ["config_hash"]
        md[f"{role}/labels_used"] = dg.MetadataValue.json(summ.get("label_counts", {}))
        for ds, m in summ["metrics"].items():
            for k, v in m.items():
                if v is not None and k != "n_images":
                    md[f"{role}/{ds}/{k}"] = float(v)
    md["runs_table"] = dg.MetadataValue.path(str(X.runs_table_path(home.models)))
    md["config"] = dg.MetadataValue.json({"budget": budget.model_dump(mode="json"), "seed": seed})
    return dg.MaterializeResult(metadata=md)


@dg.asset(deps=UPSTREAM, group_name="training", kinds={"tensorflow"}, pool=TRAINING_POOL, retry_policy=TRAINING_RETRY,
          description="The multi-task network (paper 2.2) trained on the hmi train manifest; predicts hmi test and inb.")
def mtl_model(context: dg.AssetExecutionContext, config: MTLTrainingConfig, mammo: MammoHomeResource,
              pipes: dg.PipesSubprocessClient) -> dg.MaterializeResult:
    spec = _validated(config.spec, "mtl_model")
    return launch_training(context, pipes, mammo.home(), "mtl_model", [spec], {spec.name: "mtl"},
                           _validated(config.budget, "mtl_model"), config.seed, config.retrain)


@dg.asset(deps=UPSTREAM, group_name="training", kinds={"tensorflow"}, pool=TRAINING_POOL, retry_policy=TRAINING_RETRY,
          description="Single-task ResNet22 baseline without feature fusion, its ensemble and its MC-dropout "
                      "predictions (paper 3.3.1).")
def baseline_models(context: dg.AssetExecutionContext, config: BaselineTrainingConfig, mammo: MammoHomeResource,
                    pipes: dg.PipesSubprocessClient) -> dg.MaterializeResult:
    budget = _validated(lambda: config.budget(ensemble_size=config.ensemble_size, mc_passes=config.mc_passes),
                        "baseline_models")
    specs = config.specs()
    return launch_training(context, pipes, mammo.home(), "baseline_models", specs,
                           {"baseline": "baseline", "ensemble": "ensemble", "mc_dropout": "mc_dropout"},
                           budget, config.seed, config.retrain)


@dg.asset(deps=[*UPSTREAM, "mtl_model"], group_name="training", kinds={"tensorflow"}, pool=TRAINING_POOL,
          retry_policy=TRAINING_RETRY,
          description="mtl_model fine-tuned on the vtb manifest with ACR-derived malignancy labels of "
                      "uncertainty u_const and x20 weight for ACR 4-5 (paper 3.3.5).")
def finetuned_model(context: dg.AssetExecutionContext, config: FinetuneConfig, mammo: MammoHomeResource,
                    pipes: dg.PipesSubprocessClient) -> dg.MaterializeResult:
    home = mammo.home()
    from curation.manifests import read_manifest

    if read_manifest(home, "vtb", "finetune").empty:
        reason = "no vtb finetune manifest rows (no vtb cohort): nothing to fine-tune on; skipped"
        context.log.warning(reason)
        return dg.MaterializeResult(metadata={"skipped": True, "reason": reason})
    mtl = X.latest_runs(home.models, ["mtl"]).get("mtl")
    if mtl is None:
        raise dg.Failure(description="no mtl_model run in models/runs.parquet: materialise mtl_model first",
                         allow_retries=False)
    base_spec = X.RunSpec.model_validate_json(mtl["spec"])
    base_budget = X.Budget.model_validate_json(mtl["budget"])
    budget = base_budget.model_copy(update={"finetune_epochs": config.epochs,
                                            "finetune_learning_rate": config.learning_rate})
    spec = _validated(lambda: config.spec(init_from=base_spec.name), "finetuned_model")
    return launch_training(context, pipes, home, "finetuned_model", [base_spec, spec], {spec.name: "finetuned"},
                           budget, int(mtl["seed"]), config.retrain)


defs = dg.Definitions(assets=[mtl_model, baseline_models, finetuned_model])
