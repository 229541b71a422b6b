"""``mammo-mtl`` — the console entry point.

Each area registers its commands in a module under ``pipelines/commands/`` that exposes
``register(app: typer.Typer) -> None``; modules are discovered in name order, so adding a
command never means editing this file.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

from pipelines import commands as _commands

app = typer.Typer(
    name="mammo-mtl",
    help="Curate mammography DICOM + reports into validated training data; train, evaluate and fine-tune the MTL network.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _register_all() -> None:
    for info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{_commands.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(app)


_register_all()

if __name__ == "__main__":  # pragma: no cover
    app()
