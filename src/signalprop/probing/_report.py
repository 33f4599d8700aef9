"""``ProbeReport``: per-layer forward and backward moments, as a table, JSON, a plot and a verdict."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from functools import cached_property

from .._table import format_table
from ..theory import Prediction
from ._overlay import prediction_from_spec

__all__ = ["Row", "ParamRow", "ProbeReport", "compare"]


@dataclass(frozen=True)
class Row:
    """One tensor output of one module call. ``fwd_*`` describe the output ``h``, ``bwd_*`` its gradient
    ``∂ℓ/∂h`` (NaN when backward never reached it). ``role`` is ``layer`` (a module with parameters),
    ``activation`` or ``other``; ``activation`` is the registry spec of an activation module."""

    name: str
    kind: str
    role: str
    activation: str | None
    call: int
    output: str
    shape: tuple[int, ...]
    fwd_mean: float
    fwd_var: float
    fwd_unit_var_min: float
    fwd_unit_var_max: float
    fwd_nonfinite: float
    fwd_dead: float
    fwd_identical: float
    fwd_saturated: float
    bwd_mean: float
    bwd_var: float
    bwd_unit_var_min: float
    bwd_unit_var_max: float
    bwd_nonfinite: float
    bwd_dead: float
    bwd_identical: float

    @property
    def label(self) -> str:
        call = f"#{self.call}" if self.call else ""
        return f"{self.name}{call}{self.output}"

    @property
    def where(self) -> str:
        """The label with the module kind, for messages: ``12 (Linear)``."""
        return f"{self.label} ({self.kind})"


@dataclass(frozen=True)
class ParamRow:
    """A parameter's mean and (population) std, and the norm of its gradient in the probe's backward pass."""

    name: str
    shape: tuple[int, ...]
    mean: float
    std: float
    grad_norm: float


def _g(x: float, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x + 0.0:.{digits}g}"


@dataclass(frozen=True, eq=False)
class ProbeReport:
    """Rows in forward (call) order, parameter rows, and the mean-field prediction when one applies."""

    rows: list[Row]
    params: list[ParamRow]
    label: str = "model"
    mlp_spec: dict | None = field(default=None, repr=False)
    loss: float | None = None
    grad_source: str = "normal"

    @cached_property
    def prediction(self) -> Prediction | None:
        """The mean-field prediction when the model is a plain MLP (computed on first access)."""
        return prediction_from_spec(self.mlp_spec)

    @property
    def layers(self) -> list[Row]:
        """Rows of modules with parameters (first output of each call): the depth axis of plots and verdicts."""
        return [r for r in self.rows if r.role == "layer" and r.output in ("", "[0]")]

    def table(self, every: int = 1) -> str:
        """Terminal table; ``every`` keeps every k-th layer row (and the activation rows that follow it)."""
        keep, layer_index = [], -1
        for r in self.rows:
            if r.role == "layer" and r.output in ("", "[0]"):
                layer_index += 1
            if every == 1 or (layer_index % every == 0) or r is self.rows[-1]:
                keep.append(r)
        body = [
            [r.label, r.kind, _g(r.fwd_mean), _g(r.fwd_var), f"{_g(r.fwd_unit_var_min, 3)}…{_g(r.fwd_unit_var_max, 3)}",
             _g(r.bwd_mean), _g(r.bwd_var), _flags(r)]
            for r in keep
        ]
        header = ["layer", "kind", "E[h]", "Var[h]", "unit Var[h]", "E[∂ℓ/∂h]", "Var[∂ℓ/∂h]", "notes"]
        return format_table(header, body, "llrrrrrl")

    def __str__(self) -> str:
        return self.table()

    def verdict(self, k: float = 1000.0) -> list:
        """Findings a user can act on, each naming layers and a fix (see :mod:`signalprop.probing._verdict`)."""
        from ._verdict import findings

        return findings(self, k)

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "grad_source": self.grad_source,
            "loss": self.loss,
            "rows": [asdict(r) for r in self.rows],
            "params": [asdict(p) for p in self.params],
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
            "verdict": [f.as_dict() for f in self.verdict()],
        }

    def to_json(self, **kwargs) -> str:
        def clean(v):
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            return v

        return json.dumps(clean(self.to_dict()), **kwargs)

    def plot(self, path, *others: "ProbeReport", title: str | None = None) -> None:
        """Forward and backward variance per layer on a log scale; several reports as several lines,
        the mean-field prediction dashed where one applies. Needs matplotlib."""
        from ._plot import plot_reports

        plot_reports([self, *others], path, title)


def _flags(r: Row) -> str:
    notes = []
    if r.fwd_nonfinite > 0 or r.bwd_nonfinite > 0:
        notes.append("NaN/Inf")
    if r.fwd_identical == 1:
        notes.append("identical units")
    if r.fwd_saturated > 0.2:
        notes.append(f"saturated {r.fwd_saturated:.0%}")
    if r.fwd_dead > 0.2 and r.fwd_identical != 1 and r.fwd_unit_var_max > 0:
        notes.append(f"dead {r.fwd_dead:.0%}")
    return ", ".join(notes)


def compare(*reports: ProbeReport, every: int = 1) -> str:
    """Side-by-side forward and backward variance of several reports, layer by layer."""
    if not reports:
        raise ValueError("compare needs at least one report")
    columns = [r.layers for r in reports]
    depth = max(len(c) for c in columns)
    header = ["layer"]
    for r in reports:
        header += [f"{r.label}: Var[h]", "Var[∂ℓ/∂h]"]
    body = []
    for i in range(depth):
        if i % every and i != depth - 1:
            continue
        row = [str(i + 1)]
        for c in columns:
            row += [_g(c[i].fwd_var), _g(c[i].bwd_var)] if i < len(c) else ["", ""]
        body.append(row)
    return format_table(header, body, "r" * len(header))
