"""``make demo``: synthetic cohorts -> every asset of the code location, on the persistent instance."""

from __future__ import annotations

import json
import time

import pandas as pd
from rich.console import Console
from rich.table import Table

from curation.home import MammoHome


def generate_demo_cohorts(home: MammoHome, sizes: dict[str, int], *, height: int, seed: int,
                          console: Console) -> None:
    """Write each demo cohort; a folder made by the same generator version with the same arguments is
    reused (the generator is deterministic), anything else is regenerated in place."""
    from curation.demo_cohort import generate_cohort
    from curation.demo_cohort.cohort import GENERATOR_VERSION

    for offset, (cohort, patients) in enumerate(sizes.items()):
        out = home.batch_root(cohort)
        wanted = {"version": GENERATOR_VERSION, "cohort": cohort, "patients": patients, "seed": seed + offset,
                  "height": height}
        marker = out / "generator.json"
        if marker.exists():
            made = json.loads(marker.read_text())
            if all(made.get(k) == v for k, v in wanted.items()):
                console.print(f"cohort {cohort}: reusing {out}")
                continue
        start = time.perf_counter()
        summary = generate_cohort(cohort, patients, seed + offset, out, height=height)
        console.print(f"cohort {cohort}: {patients} patients, {summary.images} images, {summary.reports} reports, "
                      f"{sum(summary.defects.values())} planted bad files — {time.perf_counter() - start:.1f}s")


def run_demo(home: MammoHome, sizes: dict[str, int], *, height: int, seed: int, downstream: bool,
             console: Console) -> bool:
    from pipelines.instance import ensure_instance

    dagster_home = ensure_instance(home)
    console.rule("1/3 demo cohorts (synthetic — never a clinical claim)")
    generate_demo_cohorts(home, sizes, height=height, seed=seed, console=console)

    import dagster as dg
    from pipelines.definitions import BATCH_JOB, DOWNSTREAM_JOB, defs
    from pipelines.partitions import batch_partitions

    instance = dg.DagsterInstance.get()
    batches = home.batches()
    known = set(instance.get_dynamic_partitions(batch_partitions.name))
    new = [b for b in batches if b not in known]
    if new:
        instance.add_dynamic_partitions(batch_partitions.name, new)

    # the assets' own INFO lines, not Dagster's per-step DEBUG event stream
    quiet = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    ok = True
    console.rule(f"2/3 per-batch assets ({', '.join(batches)})")
    batch_job = defs.resolve_job_def(BATCH_JOB)
    for batch in batches:
        start = time.perf_counter()
        result = batch_job.execute_in_process(partition_key=batch, instance=instance, raise_on_error=False,
                                                  run_config=quiet)
        ok &= _report(result, f"batch {batch}", start, console)

    job_names = {j.name for j in defs.resolve_all_job_defs()}
    if downstream and DOWNSTREAM_JOB in job_names:
        console.rule("3/3 manifests, review queue, training, evaluation")
        start = time.perf_counter()
        # training runs at the assets' defaults, the "demo" budget (model/experiments/budgets.py: 256x128,
        # 24 epochs, batch 16, one single-task baseline): MTL and baseline train for the same epochs and
        # experiment_tables reuses both. The MTL network needs more than 8 epochs to learn more than view
        # here (bench/README_model.md); W stays 128 (W=192 keeps all tissue but costs 1.5x, past 10 minutes),
        # and training warns with the count of images whose tissue is cut.
        result = defs.resolve_job_def(DOWNSTREAM_JOB).execute_in_process(
            instance=instance, raise_on_error=False, run_config=quiet)
        ok &= _report(result, DOWNSTREAM_JOB, start, console)

    print_summary(home, console)
    console.print(f"\nOpen the Dagster UI on the same instance: [bold]make ui[/] (DAGSTER_HOME={dagster_home}),"
                  " then http://localhost:3000")
    return ok


def _report(result, label: str, start: float, console: Console) -> bool:
    elapsed = time.perf_counter() - start
    if result.success:
        console.print(f"[green]✓[/] {label} materialised in {elapsed:.1f}s")
        return True
    console.print(f"[red]✗[/] {label} failed after {elapsed:.1f}s")
    for event in result.all_events:
        if event.is_failure and event.event_specific_data is not None:
            error = getattr(event.event_specific_data, "error", None)
            if error is not None:
                console.print(f"  [red]{event.step_key}[/]: {error.message.strip()[:2000]}")
    return False


def _read(path) -> pd.DataFrame | None:
    try:
        return pd.read_parquet(path) if path.exists() else None
    except Exception:  # a half-written file must not break the summary
        return None


def print_summary(home: MammoHome, console: Console) -> None:
    table = Table(title=f"mammo-mtl data under {home.root}")
    for col in ("batch", "files", "catalogued", "quarantined", "quarantine reasons", "patients",
                "preprocessed", "breast labels"):
        table.add_column(col)
    for batch in home.batches():
        cat = _read(home.catalog_path(batch))
        quar = _read(home.quarantine_path(batch))
        idx = _read(home.cache_index_path(batch))
        labels = _read(home.breast_labels_path(batch))
        reasons = ", ".join(f"{k}:{v}" for k, v in quar["reason_code"].value_counts().sort_index().items()) \
            if quar is not None and len(quar) else "–"
        n_cat = len(cat) if cat is not None else 0
        n_quar = len(quar) if quar is not None else 0
        table.add_row(batch, str(n_cat + n_quar) if cat is not None else "–", str(n_cat) if cat is not None else "–",
                      str(n_quar) if quar is not None else "–", reasons,
                      str(cat["patient_pid"].nunique()) if cat is not None else "–",
                      str(len(idx)) if idx is not None else "–",
                      str(int(labels["label"].notna().sum())) if labels is not None and "label" in labels else "–")
    console.print(table)

    manifests = sorted(home.manifests.glob("cohort=*/split=*/*.parquet"))
    if manifests:
        counts: dict[str, int] = {}
        for part in manifests:
            key = f"{part.parent.parent.name.split('=')[1]}/{part.parent.name.split('=')[1]}"
            counts[key] = counts.get(key, 0) + pd.read_parquet(part, columns=["image_key"]).shape[0]
        console.print("manifests: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    if home.evaluation_json.exists():
        summary = _evaluation_summary(home)
        console.rule("evaluation (synthetic data: a functional benchmark, not a clinical result)")
        console.print(summary)


def _evaluation_summary(home: MammoHome) -> str:
    try:
        from model.metrics import format_summary  # owned by the evaluation area
        return format_summary(home.evaluation_json)
    except ImportError:
        return json.dumps(json.loads(home.evaluation_json.read_text()), indent=1)[:4000]
