"""The code location loads, and its asset graph matches the reviewed snapshot: an accidental change to
keys, partitioning, dependencies, checks, jobs or sensors shows up here in review.

Regenerate after an intended change: ``UPDATE_SNAPSHOTS=1 pytest tests/test_defs.py -k snapshot``; a missing
snapshot fails (it is never written silently).
"""

import json
import os
import re
from pathlib import Path

from pipelines.definitions import BATCH_JOB, DOWNSTREAM_JOB, build_definitions

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def _graph() -> dict:
    defs = build_definitions("/nonexistent-home")
    graph = {"assets": {}, "checks": [], "jobs": [], "sensors": [], "schedules": []}
    for spec in sorted(defs.resolve_all_asset_specs(), key=lambda s: s.key.to_user_string()):
        graph["assets"][spec.key.to_user_string()] = {
            "partitioned_by": getattr(spec.partitions_def, "name", None),
            "deps": sorted(d.asset_key.to_user_string() for d in spec.deps),
            "group": spec.group_name,
        }
    repo = defs.get_repository_def()
    graph["checks"] = sorted(f"{k.asset_key.to_user_string()}:{k.name}"
                             for k in repo.asset_graph.asset_check_keys)
    graph["jobs"] = sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__"))
    graph["sensors"] = sorted(s.name for s in defs.sensors or [])
    graph["schedules"] = sorted(s.name for s in defs.schedules or [])
    return graph


def test_definitions_load_with_both_derived_jobs():
    graph = _graph()
    assert {BATCH_JOB, DOWNSTREAM_JOB} <= set(graph["jobs"])
    partitioned = {k for k, v in graph["assets"].items() if v["partitioned_by"] == "batch"}
    assert {"dicom_catalog", "quarantine", "report_mentions", "breast_labels", "image_labels",
            "preprocessed_images"} <= partitioned


REGENERATE = "UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_defs.py -k snapshot"


def test_asset_graph_matches_the_reviewed_snapshot():
    graph = _graph()
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(graph, indent=1, sort_keys=True) + "\n")
    assert SNAPSHOT.exists(), f"no reviewed snapshot at {SNAPSHOT}; write one explicitly with: {REGENERATE}"
    assert graph == json.loads(SNAPSHOT.read_text()), f"the asset graph changed; if intended: {REGENERATE}"


def test_sensor_runs_go_to_named_jobs():
    """A sensor that targets a bare asset selection runs as ``__anonymous_asset_job_…`` in the UI."""
    defs = build_definitions("/nonexistent-home")
    anonymous = {s.name: [t.job_name for t in s.targets] for s in defs.sensors or []
                 if not s.targets or any(t.job_name.startswith("__") for t in s.targets)}
    assert anonymous == {}


def test_asset_and_check_descriptions_spell_placeholders_so_markdown_keeps_them():
    """``catalog/<batch>/catalog.parquet`` renders as ``catalog//catalog.parquet`` in the UI's markdown."""
    defs = build_definitions("/nonexistent-home")
    repo = defs.get_repository_def()
    texts = {s.key.to_user_string(): s.description or "" for s in defs.resolve_all_asset_specs()}
    texts |= {f"{k.asset_key.to_user_string()}:{k.name}": repo.asset_graph.get_check_spec(k).description or ""
              for k in repo.asset_graph.asset_check_keys}
    texts |= {f"job {j.name}": j.description or "" for j in defs.resolve_all_job_defs()}
    texts |= {f"sensor {s.name}": s.description or "" for s in defs.sensors or []}
    swallowed = {name: text for name, text in texts.items() if re.search(r"<[A-Za-z_][\w ]*>", text)}
    assert swallowed == {}, "write placeholders as {batch}, not <batch>"


def test_production_takes_the_pseudonym_key_from_the_environment_and_fails_naming_it_when_unset(monkeypatch):
    import dagster as dg
    import pytest

    from pipelines.resources import PseudonymKeyResource, default_resources

    @dg.asset
    def keyed(pseudonym: PseudonymKeyResource) -> dg.MaterializeResult:
        key, is_demo = pseudonym.key_bytes()
        return dg.MaterializeResult(metadata={"key": key.decode(), "demo": is_demo})

    monkeypatch.delenv("MAMMO_PSEUDONYM_KEY", raising=False)
    local = dg.materialize([keyed], resources=default_resources("/nonexistent-home", "local"))
    assert local.asset_materializations_for_node("keyed")[0].metadata["demo"].value is True
    with pytest.raises(Exception, match="MAMMO_PSEUDONYM_KEY"):
        dg.materialize([keyed], resources=default_resources("/nonexistent-home", "production"))
    monkeypatch.setenv("MAMMO_PSEUDONYM_KEY", "site-secret")
    prod = dg.materialize([keyed], resources=default_resources("/nonexistent-home", "production"))
    assert prod.asset_materializations_for_node("keyed")[0].metadata["demo"].value is False
    with pytest.raises(ValueError, match="MAMMO_ENV='staging'"):
        default_resources("", "staging")
