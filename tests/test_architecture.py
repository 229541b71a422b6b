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
        yield prefix
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            stack.append((prefix + (name,), sub))


def test_every_cli_command_has_help():
    from pipelines.cli import app

    runner = CliRunner()
    paths = list(_commands(app))
    assert ("demo",) in paths and ("catalog",) in paths
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output
