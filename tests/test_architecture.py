"""The layout rules of the product card, enforced: domain code is Dagster-free, every command has help."""

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
DOMAIN_PACKAGES = ["curation", "label_mining", "model", "review_app"]
# dagster_pipes (the Pipes wire protocol, no orchestrator) is allowed where a subprocess reports back
DAGSTER_IMPORT = re.compile(r"^\s*(import dagster\b(?!_pipes)|from dagster\b(?!_pipes))", re.MULTILINE)


@pytest.mark.parametrize("package", DOMAIN_PACKAGES)
def test_domain_code_does_not_import_dagster(package):
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / package).rglob("*.py")
                 if DAGSTER_IMPORT.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_asset_modules_define_no_resources():
    import dagster as dg

    from pipelines.definitions import _area_definitions

    for area in _area_definitions():
        assert not area.resources, "resources belong in pipelines/resources.py"


def _commands(app):
    import typer.main

    click_app = typer.main.get_command(app)
    stack = [((), click_app)]
    while stack:
        prefix, cmd = stack.pop()
        yield prefix, cmd
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            stack.append((prefix + (name,), sub))


def _help_text(cmd) -> str:
    return " ".join((cmd.help or cmd.short_help or "").split())


def test_every_cli_command_has_help():
    from pipelines.cli import app

    runner = CliRunner()
    commands = dict(_commands(app))
    assert ("demo",) in commands and ("catalog",) in commands
    without = [" ".join(("mammo-mtl", *path)) for path, cmd in commands.items() if not _help_text(cmd)]
    assert without == [], "give these commands a docstring (or help=...) saying what they do"
    for path, cmd in commands.items():
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        # the first words of the command's own help are printed, not just click's "Usage:" line
        first_words = " ".join(_help_text(cmd).split()[:3])
        assert first_words in " ".join(result.output.split()), (path, first_words)


CODE_PACKAGES = [*DOMAIN_PACKAGES, "assets", "pipelines"]
SCHEMA_MODULES = {"curation/schemas.py", "label_mining/schemas.py"}


def _code_files():
    for package in CODE_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8")


def test_every_table_schema_is_defined_in_one_of_the_two_schema_modules():
    offenders = [rel for rel, text in _code_files()
                 if rel not in SCHEMA_MODULES and re.search(r"\bpa\.schema\(", text)]
    assert offenders == [], "define the table's schema in curation/schemas.py and import it"


def test_every_persisted_table_has_a_schema_in_curation_schemas():
    from curation.schemas import TABLES

    assert {"catalog", "quarantine", "cache_index", "report_mentions", "breast_labels", "image_labels",
            "review_queue", "adjudications", "manifest", "excluded", "dataset_card", "runs"} <= set(TABLES)
    assert all(len(schema.names) == len(set(schema.names)) > 0 for schema in TABLES.values())


VOCABULARY = re.compile(r"^(TASKS|LABEL_TASKS|BREAST_TASKS|IMAGE_TASKS|DECISIONS)\s*[:=]", re.MULTILINE)


def test_task_and_decision_vocabularies_are_defined_only_in_curation_tasks():
    offenders = [rel for rel, text in _code_files() if rel != "curation/tasks.py" and VOCABULARY.search(text)]
    assert offenders == [], "import the vocabulary from curation.tasks instead of spelling it again"


# a file of the data root joined by hand (home.labels / "adjudications.parquet"): MammoHome spells each once
HOME_PATH_LITERAL = re.compile(
    r"\b(labels|labels_dir\([^)]*\)|manifests|manifests_meta|models|reports|catalog|cache|review)\s*/\s*"
    r"[\"'][\w.-]+\.(parquet|json|db)[\"']")


def test_paths_under_the_data_root_are_spelled_only_on_mammohome():
    offenders = [f"{rel}: {m.group(0)}" for rel, text in _code_files() if rel != "curation/home.py"
                 for m in HOME_PATH_LITERAL.finditer(text)]
    assert offenders == [], "add a MammoHome method (curation/home.py) and call it"
