"""How `check` shows a selection: JSON for machines, a rich table and the problems for people."""
from typing import Dict, Optional

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .model import Package, Selection
from .published import status
from .signed import signature_of


def _stages_of(selection: Selection) -> Dict[str, str]:
    stage_of = {p.file: stage for stage, pkgs in reversed(list(selection.pip_index.items())) for p in pkgs}
    stage_of.update({p.file: stage for stage, pkgs in selection.stages.items() for p in pkgs})
    return stage_of


def _package(pkg: Package, selected: bool, stage: Optional[str]) -> dict:
    return {"file": pkg.file, "component": pkg.component, "slot": pkg.slot, "version": pkg.version,
            "arch": pkg.arch, "chip": pkg.chip, "python": pkg.python, "torch": pkg.torch, "abi": pkg.abi,
            "prerelease": pkg.prerelease, "format": pkg.format, "size": pkg.size, "sha256": pkg.sha256,
            "selected": selected, "stage": stage, "published": status(pkg), "signature": signature_of(pkg),
            "from": pkg.source.file if pkg.source else None}


def to_json(selection: Selection) -> dict:
    """{ok, target, arch, chip, python, python_source, cxx_abi, stages, pip, packages[...], problems[...],
    unrecognised[...]}"""
    chosen = {p.file for p in selection.selected()}
    stage_of = _stages_of(selection)
    return {
        "ok": selection.ok, "target": selection.target, "arch": selection.arch, "chip": selection.chip,
        "python": selection.python, "python_source": selection.python_source, "cxx_abi": selection.abi,
        "stages": {stage: [p.file for p in pkgs] for stage, pkgs in selection.stages.items()},
        "pip": {stage: [p.file for p in pkgs] for stage, pkgs in selection.pip_index.items()},
        "packages": [_package(p, p.file in chosen, stage_of.get(p.file)) for p in selection.packages],
        "problems": [{"level": p.level, "code": p.code, "message": p.message, "file": p.file, "fix": p.fix}
                     for p in selection.problems],
        "unrecognised": list(selection.unrecognised),
    }


def _table(selection: Selection) -> Table:
    chosen = {p.file for p in selection.selected()}
    stage_of = _stages_of(selection)
    table = Table(title=f"packages for target {selection.target} ({selection.arch})", title_justify="left")
    for column in ("file", "component", "version", "arch", "chip", "python", "selected", "source", "signature"):
        table.add_column(column, overflow="fold")
    order = {p.file: i for i, p in enumerate(selection.selected())}
    rows = sorted(selection.packages, key=lambda p: (order.get(p.file, len(order) + (p.file not in stage_of)), p.file))
    for pkg in rows:
        mark = f"[green]{stage_of[pkg.file]}[/]" if pkg.file in chosen else (
            f"[dim]pip ({stage_of[pkg.file]})[/]" if pkg.file in stage_of else "")
        shown = f"{pkg.source.file} -> {pkg.name}" if pkg.source else pkg.file
        table.add_row(escape(shown), pkg.component, pkg.version, pkg.arch or "any", pkg.chip or "",
                      pkg.python or "", mark, status(pkg) or "", signature_of(pkg) or "")
    for name in selection.unrecognised:
        table.add_row(f"[dim]{escape(name)}[/]", "[yellow]unrecognised[/]", "", "", "", "", "", "", "")
    return table


def render(selection: Selection, console: Console, strict: bool = False) -> None:
    """The table, each problem with its fix, and a one-line verdict."""
    if not console.is_terminal:         # a log or a pipe: keep each file name on one line
        console.width = max(console.width, 250)
    console.print(_table(selection))
    for p in selection.problems:
        colour = {"error": "red", "warning": "yellow"}.get(p.level, "cyan")
        console.print(f"[bold {colour}]{p.level}[/] [{colour}]\\[{p.code}][/] {escape(p.message)}")
        if p.fix:
            console.print(f"    [dim]fix:[/] {escape(p.fix)}")
    errors = [p for p in selection.problems if p.level == "error"]
    warnings = [p for p in selection.problems if p.level == "warning"]
    facts = ", ".join(x for x in (f"chip {selection.chip}" if selection.chip else "",
                                  f"Python {selection.python}" if selection.python else "",
                                  f"C++ ABI {selection.abi} (torch wheel)" if selection.abi is not None else "") if x)
    if selection.python_source:
        console.print(f"[dim]image Python: {escape(selection.python or 'unknown')} from {escape(selection.python_source)}[/]")
    if passed(selection, strict):
        console.print(f"[green]ok:[/] target {selection.target} ({selection.arch}{', ' + facts if facts else ''})"
                      + (f", {len(warnings)} warning(s)" if warnings else ""))
    else:
        console.print(f"[bold red]not ok:[/] {len(errors)} error(s), {len(warnings)} warning(s)"
                      + (" (--strict: warnings count)" if strict and not errors else ""))


def passed(selection: Selection, strict: bool) -> bool:
    """Exit 0: no errors (with `strict`: no warnings either)."""
    return selection.ok and not (strict and any(p.level == "warning" for p in selection.problems))

