"""What an experiment writes and shows: tables, figures, results and a progress bar, kept apart from what
it computes."""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .._plotting import pyplot, save


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, torch.Tensor):
        return _jsonable(value.tolist())
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def cell(value, digits: int = 4) -> str:
    """A table cell: floats to ``digits`` significant figures, ``None`` as a dash."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]

    def markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| " + " | ".join(h.replace("|", "\\|") for h in self.header) + " |",
                 "|" + "|".join("---" for _ in self.header) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass
class Context:
    """Run settings (``quick``, ``seed``, ``out``) and the collected tables, figures, notes and results."""

    name: str
    title: str
    quick: bool
    seed: int
    out: Path
    progress: bool = True
    results: dict = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def generator(self, offset: int = 0) -> torch.Generator:
        """A CPU generator seeded ``seed + offset``: each random draw of an experiment names its stream."""
        return torch.Generator().manual_seed(self.seed + offset)

    def table(self, title: str, header: Sequence[str], rows: Sequence[Sequence]) -> None:
        self.tables.append(Table(title, list(header), [[cell(v) for v in row] for row in rows]))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def figure(self, filename: str, draw: Callable, *, size=(10, 4), ncols: int = 1, nrows: int = 1) -> None:
        """``draw(axes)`` on a new figure, saved as ``out/filename``: one axes, a row or column of them
        (1-D), or a grid (2-D)."""
        plt = pyplot()
        fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False)
        if nrows == 1 or ncols == 1:
            axes = axes.ravel() if nrows * ncols > 1 else axes[0, 0]
        draw(axes)
        save(fig, self.out / filename)
        self.figures.append(filename)

    @contextlib.contextmanager
    def steps(self, total: int, description: str) -> Iterator[Callable[[int], None]]:
        """A progress bar with ETA over ``total`` units of work; yields ``advance(k=1)``."""
        with _bar(total, f"{self.name}: {description}", self.progress) as advance:
            yield advance

    def write(self, command: str) -> dict:
        """``results.json`` and ``results.md`` in ``out``; returns the JSON document."""
        document = {"experiment": self.name, "title": self.title, "quick": self.quick, "seed": self.seed,
                    "command": command, "results": _jsonable(self.results), "figures": self.figures,
                    "notes": self.notes}
        (self.out / "results.json").write_text(json.dumps(document, indent=2) + "\n")
        parts = [f"# {self.title}", "", f"`{command}`", ""]
        for table in self.tables:
            parts += [table.markdown(), ""]
        parts += [f"![{name}]({name})" for name in self.figures]
        if self.notes:
            parts += ["", *[f"- {n}" for n in self.notes]]
        (self.out / "results.md").write_text("\n".join(parts) + "\n")
        return document


@contextlib.contextmanager
def _bar(total: int, description: str, enabled: bool) -> Iterator[Callable[[int], None]]:
    try:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    except ImportError:
        enabled = False
    if not enabled:
        yield lambda k=1: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("ETA"),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(file=sys.stderr), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda k=1: bar.advance(task, k)
