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
