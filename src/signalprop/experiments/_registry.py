"""The experiments by name, and running one into a directory."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ._context import Context


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    summary: str
    run: Callable[[Context], None]


_REGISTRY: dict[str, Experiment] = {}


def register(name: str, title: str, summary: str) -> Callable:
    def add(fn: Callable[[Context], None]) -> Callable[[Context], None]:
        _REGISTRY[name] = Experiment(name, title, summary, fn)
        return fn

    return add


def experiments() -> tuple[Experiment, ...]:
    return tuple(_REGISTRY.values())


def get(name: str) -> Experiment:
    key = name.lower().replace("_", "-")
    if key not in _REGISTRY:
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(_REGISTRY)}")
    return _REGISTRY[key]


def run(name: str, *, quick: bool = False, out: str | Path | None = None, seed: int = 0,
        progress: bool = True) -> dict:
    """Run experiment ``name`` and write ``results.json``, ``results.md`` and its figures into ``out``
    (default ``out/NAME``, with ``-quick`` for the quick version). Returns the results document.

    Seeded and deterministic: every random draw comes from a generator seeded from ``seed``, and the
    global RNG is forked so the caller's state is untouched. Runs on the CPU with the threads torch has.
    """
    experiment = get(name)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    out = Path(out) if out is not None else Path("out") / (experiment.name + ("-quick" if quick else ""))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create {out}: {err.strerror}") from None
    ctx = Context(experiment.name, experiment.title, quick, seed, out, progress)
    start = time.perf_counter()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        experiment.run(ctx)
    ctx.results["seconds"] = round(time.perf_counter() - start, 2)
    command = f"signalprop experiment run {experiment.name}{' --quick' if quick else ''} --seed {seed}"
    return ctx.write(command)
