"""Verdicts on a probe report: what breaks the seed's equal-moments target, where, and the fix it names.

Checks, each naming layers (``k`` defaults to 1000, three orders of magnitude: at the edge of chaos a
tanh net's forward variance still decays like 1/depth, by ~100 over 50 layers, and that is not a defect):
* forward variance drifting by more than ``k`` between the first and the last layer (activations vanish
  or explode);
* backward variance of the first layer against the last (the top) beyond ``k`` (gradients vanish or
  explode);
* an activation whose mean is far from 0 relative to its std (the seed's ``β ≠ 0``, e.g. sigmoid);
* saturation of bounded activations, dead units;
* the first layer whose output or gradient holds NaN/Inf;
* layers whose units are exact copies of each other (the symmetry a constant init never breaks).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..activations import gain, resolve

_MEAN_RATIO = 1.0  # |E[h]| > std: the mean dominates the signal
_SATURATED = 0.2  # fraction of values within 1% of the bounds
_DEAD = 0.2  # fraction of units constant over the batch


@dataclass(frozen=True)
class Finding:
    """One problem: ``kind``, the layers it concerns, what was measured, and the fix."""

    kind: str
    layers: tuple[str, ...]
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.message} Fix: {self.fix}"

    def as_dict(self) -> dict:
        return asdict(self)


def _gain_hint(report) -> str:
    spec = next((r.activation for r in report.rows if r.activation), None)
    if spec is None:
        return "Xavier init (init_model(model, 'xavier_uniform'))"
    act = resolve(spec)
    return (f"an init scaled for {act.name}: He's gain('{spec}') = {gain(act):.4g} "
            f"(init_model(model, 'kaiming_normal', activation='{spec}')), or the edge of chaos, "
            f"gain('{spec}', 'critical')")


def _drift(rows, field: str, k: float):
    """``(first, last, ratio, layer where the value first leaves [first/k, first·k])`` or None."""
    values = [(r, getattr(r, field)) for r in rows if math.isfinite(getattr(r, field))]
    if len(values) < 2 or values[0][1] <= 0:
        return None
    (first_row, first), (last_row, last) = values[0], values[-1]
    ratio = last / first
    where = next((r for r, v in values if not first / k <= v <= first * k), None)
    return first_row, last_row, ratio, where


def findings(report, k: float = 1000.0) -> list[Finding]:
    if not k > 1:
        raise ValueError(f"k must be > 1, got {k}")
    out: list[Finding] = []
    layers = report.layers
    hint = _gain_hint(report)

    fwd = _drift(layers, "fwd_var", k)
    if fwd and (fwd[2] < 1 / k or fwd[2] > k):
        first, last, ratio, where = fwd
        kind = "vanishing activations" if ratio < 1 else "exploding activations"
        out.append(Finding(kind, (first.label, where.label if where else last.label, last.label),
                           f"{kind}: Var[h] goes from {first.fwd_var:.3g} at {first.where} to {last.fwd_var:.3g} "
                           f"at {last.where} (×{ratio:.3g}); it leaves a factor {k:g} of the first layer at {where.label if where else last.label}.",
                           f"{hint}; or normalization (LayerNorm/BatchNorm) between layers."))

    bwd = _drift(list(reversed(layers)), "bwd_var", k)  # from the top (where ∂ℓ/∂h starts) downwards
    if bwd and (bwd[2] < 1 / k or bwd[2] > k):
        top, bottom, ratio, where = bwd
        kind = "vanishing gradients" if ratio < 1 else "exploding gradients"
        fix = hint + "; or residual connections (h + f(h)) that turn products into sums"
        if ratio > 1:
            fix += "; and gradient clipping"
        out.append(Finding(kind, (top.label, where.label if where else bottom.label, bottom.label),
                           f"{kind}: Var[∂ℓ/∂h] is {top.bwd_var:.3g} at the top ({top.where}) and {bottom.bwd_var:.3g} "
                           f"at {bottom.where} (×{ratio:.3g}); it leaves a factor {k:g} of the top at {where.label if where else bottom.label}.",
                           fix + "."))

    acts = [r for r in report.rows if r.role == "activation"]
    shifted = [r for r in acts if math.isfinite(r.fwd_mean) and abs(r.fwd_mean) > 1e-6
               and abs(r.fwd_mean) > _MEAN_RATIO * math.sqrt(max(r.fwd_var, 0))]
    if shifted:
        r = shifted[0]
        out.append(Finding("mean not zero", tuple(x.label for x in shifted),
                           f"non-zero mean: {len(shifted)} activation output(s) have |E[h]| above their std, first "
                           f"{r.label} ({r.kind}, E[h] = {r.fwd_mean:.3g}, std {math.sqrt(max(r.fwd_var, 0)):.3g}); the seed's β ≠ 0.",
                           "a zero-centred activation: the scaled sigmoid 4·sigmoid(x) − 2 "
                           "(signalprop.activations.normalize), or tanh."))

    saturated = [r for r in acts if math.isfinite(r.fwd_saturated) and r.fwd_saturated > _SATURATED]
    if saturated:
        worst = max(saturated, key=lambda r: r.fwd_saturated)
        out.append(Finding("saturation", tuple(r.label for r in saturated),
                           f"saturation: {len(saturated)} activation(s) have over {_SATURATED:.0%} of outputs within 1% of "
                           f"their bounds, worst {worst.where}: {worst.fwd_saturated:.0%}; their gradients vanish there.",
                           "a smaller weight scale (gain) or normalization before the activation."))

    # units constant while others vary; a layer whose every unit is constant has vanished instead
    dead = [r for r in acts if r.fwd_dead > _DEAD and r.fwd_identical != 1 and r.fwd_unit_var_max > 0]
    if dead:
        worst = max(dead, key=lambda r: r.fwd_dead)
        out.append(Finding("dead units", tuple(r.label for r in dead),
                           f"dead units: {len(dead)} activation(s) have over {_DEAD:.0%} of units constant over the "
                           f"batch, worst {worst.where}: {worst.fwd_dead:.0%}.",
                           "He init (gain √2) for relu, a leaky relu, normalization, or residual connections."))

    bad_fwd = next((r for r in report.rows if r.fwd_nonfinite > 0), None)
    if bad_fwd is not None:
        out.append(Finding("non-finite output", (bad_fwd.label,),
                           f"NaN/Inf: the forward signal first turns non-finite at {bad_fwd.where} "
                           f"({bad_fwd.fwd_nonfinite:.0%} of its units).",
                           "check the inputs and that layer's weights; lower the learning rate; clip gradients."))
    bad_bwd = next((r for r in reversed(report.rows) if r.bwd_nonfinite > 0), None)
    if bad_bwd is not None:
        out.append(Finding("non-finite gradient", (bad_bwd.label,),
                           f"NaN/Inf: the gradient first turns non-finite at {bad_bwd.where} (the backward pass "
                           f"reaches it first; {bad_bwd.bwd_nonfinite:.0%} of its units).",
                           "clip gradients (norm or adaptive), lower the learning rate, or check the loss."))

    copies = [r for r in layers if r.fwd_identical == 1]
    if copies:
        out.append(Finding("identical units", tuple(r.label for r in copies),
                           f"symmetry: every unit of {copies[0].where} computes the same value"
                           + (f" (and of {len(copies) - 1} more layer(s))" if len(copies) > 1 else "")
                           + "; they receive the same gradient and stay identical, so the layer acts as one unit.",
                           "a random init (Xavier/He) instead of a constant one."))
    return out


def summary(report, k: float = 1000.0) -> str:
    """The findings as lines, or a line saying the seed's target holds."""
    found = findings(report, k)
    if not found:
        n = len(report.layers)
        return (f"ok: forward and backward variances stay within a factor {k:g} across {n} layers, "
                "means near 0, no saturation, dead units or NaN.")
    return "\n".join(f"- {f}" for f in found)
