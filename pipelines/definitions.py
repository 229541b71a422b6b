"""The Dagster code location: every module in ``assets/`` that exposes ``defs`` (a
``dagster.Definitions`` with assets, checks, jobs, sensors — never resources) is merged here,
in module-name order, with the shared resources. Adding an area means adding one module."""

from __future__ import annotations

import importlib
import pkgutil

import dagster as dg

import assets as _assets
from pipelines.resources import default_resources


def _area_definitions() -> list[dg.Definitions]:
    found = []
    for info in sorted(pkgutil.iter_modules(_assets.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{_assets.__name__}.{info.name}")
        area = getattr(module, "defs", None)
        if isinstance(area, dg.Definitions):
            found.append(area)
    return found


def build_definitions(root: str = "") -> dg.Definitions:
    return dg.Definitions.merge(*_area_definitions(), dg.Definitions(resources=default_resources(root)))


defs = build_definitions()
