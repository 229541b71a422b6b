"""The one renderer of metric tables: paper tables, the evaluation asset's metadata and the
summary ``mammo-mtl demo`` / ``mammo-mtl evaluate`` print all go through :func:`render`.

A :class:`Grid` is a title, column names, rows of already-formatted cells and notes; ``render``
writes it as GitHub markdown (``fmt="markdown"``) or as fixed-width text that fits a terminal
(``fmt="text"``). :func:`evaluation_grid` turns ``evaluation.json``'s ``models`` into one.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Literal, Mapping, Sequence

MISSING = "–"


@dataclass(frozen=True)
class Grid:
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    title: str = ""
    notes: Sequence[str] = field(default_factory=tuple)


def pct(x, digits: int = 1) -> str:
    return MISSING if x is None else f"{100 * x:.{digits}f}"


def p_text(p) -> str:
    return MISSING if p is None else ("<0.01" if p < 0.01 else f"{p:.2f}")


def render(grid: Grid, fmt: Literal["markdown", "text"] = "markdown", width: int = 80) -> str:
    rows = [[str(c) for c in r] for r in grid.rows]
    if fmt == "markdown":
        lines = [f"### {grid.title}", ""] if grid.title else []
        lines += ["| " + " | ".join(grid.columns) + " |", "|" + "---|" * len(grid.columns)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        if grid.notes:
            lines += ["", *grid.notes]
        return "\n".join(lines) + "\n"
    if fmt != "text":
        raise ValueError(f"fmt={fmt!r}: choose markdown or text")
    widths = [max([len(c)] + [len(r[i]) for r in rows if i < len(r)]) for i, c in enumerate(grid.columns)]
    line = lambda cells: " ".join(c.ljust(w) if i < 2 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    header = line(grid.columns)
    out = [*(textwrap.wrap(grid.title, width) if grid.title else []), header, "-" * len(header)]
    out += [line(r) for r in rows]
    for note in grid.notes:
        out += textwrap.wrap(note, width)
    return "\n".join(out)


# --- evaluation.json -------------------------------------------------------------------------------
def evaluation_grid(models: Mapping[str, Mapping[str, dict]], *, compact: bool = False,
                    notes: Sequence[str] = ()) -> Grid:
    """One row per (model, dataset): breast AUC [CI], DeLong p vs MTL, operating points and the
    auxiliary tasks. ``compact`` keeps the columns that fit 80 characters (the printed summary)."""
    if compact:
        columns = ["model", "data", "AUC [95% CI]", "p", "sens.5", "spec.5", "sp@95", "view", "ACR", "dens"]
    else:
        columns = ["model", "dataset", "breast AUC [95% CI]", "p vs MTL", "image AUC", "sens@0.5", "spec@0.5",
                   "spec@95%sens", "best MCC", "view AUC", "ACR wacc", "density wacc"]
    rows = []
    p0 = lambda x: pct(x, 0)  # noqa: E731
    for model in sorted(models, key=lambda m: (m != "mtl", m)):
        for ds, m in sorted(models[model].items()):
            if not isinstance(m, dict):
                continue
            ci = m.get("breastbin_auc_ci") or [None, None]
            auc = f"{pct(m.get('breastbin_auc'))} [{pct(ci[0])}–{pct(ci[1])}]"
            p = m.get("p_value_vs_reference")
            if compact:
                rows.append([model[:10], ds[:8], auc, p_text(p), p0(m.get("sensitivity_at_0_5")),
                             p0(m.get("specificity_at_0_5")), p0(m.get("specificity_at_95_sensitivity")),
                             p0(m.get("view_auc")), p0(m.get("acr_wacc")), p0(m.get("density_wacc"))])
            else:
                mcc = m.get("best_mcc")
                rows.append([model, ds, auc, MISSING if p is None else f"{p:.3g}", pct(m.get("image_breastbin_auc")),
                             pct(m.get("sensitivity_at_0_5")), pct(m.get("specificity_at_0_5")),
                             pct(m.get("specificity_at_95_sensitivity")), MISSING if mcc is None else f"{mcc:.2f}",
                             pct(m.get("view_auc")), pct(m.get("acr_wacc")), pct(m.get("density_wacc"))])
    return Grid(columns, rows, notes=tuple(notes))
