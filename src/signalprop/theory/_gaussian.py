"""Gaussian expectations by composite Gauss–Legendre quadrature, split where the integrand has kinks.

``E[f(m + √q·z)]``, ``z ~ N(0, 1)``, is ``∫ f(m + √q·z) φ(z) dz`` over ``[-10, 10]`` (the mass outside is
1.5e-23). The interval is cut into panels at a 0.5-spaced grid in ``z`` (the density's scale), at a
0.5-spaced grid in ``x = m + √q·z`` over ``[-8, 8]`` (the activation's scale, which matters when ``q`` is
large), and at every kink of ``f``; each panel gets 16 Gauss–Legendre nodes. On each panel the integrand
is analytic, so the rule converges geometrically: errors are at rounding level for q up to 100 and
kinked functions alike. Plain Gauss–Hermite was measured and rejected: its 200-node rule errs by 1e-8 at
q = 4 and by 8e-4 at q = 25 on ``tanh²``, because ``tanh(√q·z)`` steepens as q grows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

__all__ = ["expect", "expect_pair", "gauss_nodes"]

_Z_MAX = 10.0
_Z_GRID = torch.arange(-_Z_MAX, _Z_MAX + 1e-9, 0.5, dtype=torch.float64)
_X_GRID = torch.arange(-8.0, 8.0 + 1e-9, 0.5, dtype=torch.float64)
# Gauss–Legendre rules: 16 nodes per panel in 1-D; 8 per panel and axis in 2-D, where they already
# reach rounding level on 0.5-wide analytic panels (measured against the 16-node rule) at a quarter the cost.
_RULES = {m: tuple(torch.tensor(a, dtype=torch.float64) for a in np.polynomial.legendre.leggauss(m)) for m in (8, 16)}
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _panel_nodes(breaks: torch.Tensor, order: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and Gaussian-weighted weights for panels between sorted ``breaks`` (last dim)."""
    t, w_gl = _RULES[order]
    a, b = breaks[..., :-1, None], breaks[..., 1:, None]
    half = (b - a) / 2
    z = (a + b) / 2 + half * t
    w = half * w_gl * torch.exp(-0.5 * z * z) * _INV_SQRT_2PI
    return z.flatten(-2), w.flatten(-2)


def _breaks(mean: torch.Tensor, std: float, kinks: Sequence[float]) -> torch.Tensor:
    """Sorted panel edges in z for ``x = mean + std·z``; ``mean`` may be a column of per-row means."""
    special = torch.cat([_X_GRID, torch.tensor(list(kinks), dtype=torch.float64)])
    mapped = ((special - mean) / std).clamp(-_Z_MAX, _Z_MAX)
    grid = _Z_GRID.expand(*mapped.shape[:-1], -1)
    return torch.sort(torch.cat([grid, mapped], dim=-1), dim=-1).values


def gauss_nodes(q: float, mean: float = 0.0, kinks: Sequence[float] = (), order: int = 16
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes ``x`` and weights ``w`` with ``Σ w·f(x) ≈ E[f(mean + √q·z)]`` (float64, 1-D)."""
    std = math.sqrt(q)
    z, w = _panel_nodes(_breaks(torch.tensor(mean, dtype=torch.float64), std, kinks), order)
    return mean + std * z, w


def _check_q(q: float) -> float:
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not math.isfinite(q) or q < 0:
        raise ValueError(f"q (the variance) must be finite and >= 0, got {q!r}")
    return float(q)


def expect(f: Callable[[torch.Tensor], torch.Tensor], q: float = 1.0, mean: float = 0.0,
           *, kinks: Sequence[float] | None = None) -> float:
    r"""``E[f(mean + √q·z)]`` for ``z ~ N(0, 1)``, accurate to ~1e-12 for piecewise-analytic ``f``.

    .. math:: \mathbb{E}[f(m + \sqrt{q}\,z)] = \int f(m + \sqrt{q}\,z)\,\frac{e^{-z^2/2}}{\sqrt{2\pi}}\,dz

    Args:
        f: elementwise function on float64 tensors (an activation, a name, or any callable).
        q: variance of the argument (0 gives ``f(mean)``).
        mean: mean of the argument.
        kinks: points where ``f`` is not smooth; taken from the activation when ``f`` is one.
    """
    from ..activations._registry import evaluate, resolve

    q = _check_q(q)
    act = resolve(f, kinks=tuple(kinks or ()))
    kinks = act.kinks if kinks is None else tuple(kinks)
    if q == 0.0:
        return float(evaluate(act, torch.tensor([float(mean)], dtype=torch.float64))[0])
    x, w = gauss_nodes(q, mean, kinks)
    return float((w * evaluate(act, x)).sum())


def expect_pair(
    f1: Callable[[torch.Tensor], torch.Tensor],
    f2: Callable[[torch.Tensor], torch.Tensor],
    q: float,
    c: float,
    kinks1: Sequence[float] = (),
    kinks2: Sequence[float] = (),
) -> float:
    r"""``E[f1(u1)·f2(u2)]`` for jointly Gaussian ``u1, u2`` with variance ``q`` and correlation ``c``.

    ``u1 = √q·z1``, ``u2 = √q·(c·z1 + √(1−c²)·z2)``: an outer rule in ``z1`` and, for each outer node, an
    inner rule in ``z2`` whose panels are cut where ``f2``'s kinks fall for that node.
    """
    q = _check_q(q)
    if not -1.0 <= c <= 1.0:
        raise ValueError(f"the correlation c must lie in [-1, 1], got {c}")
    if q == 0.0:
        zero = torch.zeros(1, dtype=torch.float64)
        return float(f1(zero)[0] * f2(zero)[0])
    std = math.sqrt(q)
    s = math.sqrt(max(1.0 - c * c, 0.0))
    x1, w1 = gauss_nodes(q, 0.0, kinks1, order=8)
    g1 = f1(x1)
    if s < 1e-12:  # u2 = ±u1
        return float((w1 * g1 * f2(math.copysign(1.0, c) * x1)).sum())
    inner_mean = (c * x1)[:, None]  # u2 = c·u1 + √q·s·z2
    z2, w2 = _panel_nodes(_breaks(inner_mean, std * s, kinks2), order=8)
    inner = (w2 * f2(inner_mean + std * s * z2)).sum(dim=-1)
    return float((w1 * g1 * inner).sum())
