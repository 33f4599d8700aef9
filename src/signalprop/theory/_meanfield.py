r"""Mean-field signal propagation through a deep fully connected network.

Layer ``l`` computes ``h^l = W^l φ(h^{l−1}) + b^l`` with ``W^l_{ij} ~ N(0, σ_w²/n_{l−1})`` and
``b^l_i ~ N(0, σ_b²)``. In the wide limit every pre-activation is Gaussian (Poole et al. 2016):

* length map ``q^l = σ_w² E[φ(√q^{l−1} z)²] + σ_b²``, fixed point ``q*``;
* slope ``χ₁ = σ_w² E[φ'(√q* z)²]``: ordered phase ``χ₁ < 1`` (gradients vanish), chaotic ``χ₁ > 1``
  (gradients explode), edge of chaos ``χ₁ = 1``;
* correlation map ``c^l = (σ_w² E[φ(u₁)φ(u₂)] + σ_b²)/q*`` with ``u₁ = √q* z₁``,
  ``u₂ = √q*(c z₁ + √(1−c²) z₂)``, fixed point ``c*`` (1 in the ordered phase);
* depth scales (Schoenholz et al. 2017): ``ξ_q⁻¹ = −ln(χ₁ + σ_w² E[φ''(√q* z) φ(√q* z)])`` and
  ``ξ_c⁻¹ = −ln(σ_w² E[φ'(u₁*) φ'(u₂*)])`` at ``c*``; ``ξ_c`` diverges at the edge of chaos.

Backward, the gradient with respect to the pre-activations obeys
``q̃^l = q̃^{l+1} · (n_{l+1}/n_l) · σ_{w,l+1}² · E[φ'(√q^l z)²]``, evaluated at each layer's own ``q^l``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch

from .._checks import finite, non_negative
from .._table import format_table
from ..activations._registry import Activation, derivative, evaluate, resolve
from ._gaussian import expect, expect_pair

__all__ = [
    "MeanField",
    "Prediction",
    "analyse",
    "chi1",
    "correlation_map",
    "critical_sigma_w2",
    "fixed_point_c",
    "fixed_point_q",
    "length_map",
    "predict",
]

_Q_MAX = 1e12


def _second_moment(act: Activation, q: float) -> float:
    if act.closed_form is not None:
        return q * (1 + act.closed_form**2) / 2
    return expect(lambda x: evaluate(act, x) ** 2, q, kinks=act.kinks)


def _grad_second_moment(act: Activation, q: float) -> float:
    if act.closed_form is not None:
        return (1 + act.closed_form**2) / 2
    return expect(lambda x: derivative(act, x) ** 2, q, kinks=act.kinks)


def length_map(act, q: float, sigma_w2: float, sigma_b2: float = 0.0) -> float:
    """``σ_w²·E[φ(√q·z)²] + σ_b²``: the next layer's pre-activation variance."""
    act = resolve(act)
    return sigma_w2 * _second_moment(act, q) + sigma_b2


def chi1(act, q: float, sigma_w2: float) -> float:
    """``χ₁ = σ_w²·E[φ'(√q·z)²]``: per-layer growth of gradient variance (and of small perturbations)."""
    return sigma_w2 * _grad_second_moment(resolve(act), q)


def _root(fn: Callable[[float], float], lo: float, hi: float, f_lo: float, f_hi: float, tol: float) -> float:
    """A sign change of ``fn`` in ``[lo, hi]`` by the Illinois variant of regula falsi."""
    side = 0
    for _ in range(200):
        x = (lo * f_hi - hi * f_lo) / (f_hi - f_lo) if f_hi != f_lo else (lo + hi) / 2
        if not lo < x < hi:
            x = (lo + hi) / 2
        fx = fn(x)
        if fx == 0 or hi - lo <= tol * max(1.0, abs(x)):
            return x
        if (fx > 0) == (f_lo > 0):
            lo, f_lo = x, fx
            if side == -1:
                f_hi /= 2
            side = -1
        else:
            hi, f_hi = x, fx
            if side == 1:
                f_lo /= 2
            side = 1
    return (lo + hi) / 2


def fixed_point_q(act, sigma_w2: float, sigma_b2: float = 0.0, q0: float = 1.0) -> float:
    """The fixed point ``q*`` of the length map reached from ``q0`` (``inf`` when ``q`` grows without bound).

    The map is increasing in ``q``, so iterating it from ``q0`` moves monotonically to the nearest fixed
    point in the direction of ``F(q0) = map(q0) − q0``; that root is bracketed and refined.
    """
    act = resolve(act)
    sigma_w2, sigma_b2, q0 = non_negative("sigma_w2", sigma_w2), non_negative("sigma_b2", sigma_b2), non_negative("q0", q0)
    if act.closed_form is not None:
        r = sigma_w2 * (1 + act.closed_form**2) / 2
        if r < 1:
            return sigma_b2 / (1 - r)
        return q0 if (r == 1 and sigma_b2 == 0) else math.inf

    def excess(q: float) -> float:
        return length_map(act, q, sigma_w2, sigma_b2) - q

    f0 = excess(q0)
    if f0 == 0:
        return q0
    if f0 > 0:
        lo, f_lo, hi = q0, f0, max(2 * q0, 1e-3)
        while (f_hi := excess(hi)) > 0:
            if hi > _Q_MAX:
                return math.inf
            lo, f_lo, hi = hi, f_hi, 2 * hi
        return _root(excess, lo, hi, f_lo, f_hi, 1e-14)
    f_zero = excess(0.0)  # >= 0: map(0) = σ_w²φ(0)² + σ_b²
    if f_zero > 0:
        return _root(excess, 0.0, q0, f_zero, f0, 1e-14)
    return _zero_or_root(excess, q0, f0)


def _zero_or_root(excess: Callable[[float], float], q0: float, f0: float) -> float:
    """``map(0) = 0``: scan down from ``q0`` for a sign change; if none, the iteration tends to 0."""
    hi, f_hi = q0, f0
    lo = hi / 2
    while lo > 1e-30:
        f_lo = excess(lo)
        if f_lo > 0:
            return _root(excess, lo, hi, f_lo, f_hi, 1e-14)
        hi, f_hi, lo = lo, f_lo, lo / 2
    return 0.0


def correlation_map(act, c: float, q: float, sigma_w2: float, sigma_b2: float = 0.0) -> float:
    """``(σ_w²·E[φ(u₁)φ(u₂)] + σ_b²) / q`` for inputs with variance ``q`` and correlation ``c``."""
    act = resolve(act)
    if q == 0:
        return 1.0
    f = lambda x: evaluate(act, x)  # noqa: E731
    return (sigma_w2 * expect_pair(f, f, q, c, act.kinks, act.kinks) + sigma_b2) / q


def fixed_point_c(act, q: float, sigma_w2: float, sigma_b2: float = 0.0) -> float:
    """The stable fixed point ``c*`` of the correlation map: 1 in the ordered phase, below 1 when chaotic."""
    act = resolve(act)
    if not math.isfinite(q) or q == 0 or chi1(act, q, sigma_w2) <= 1:
        return 1.0

    def excess(c: float) -> float:
        return correlation_map(act, c, q, sigma_w2, sigma_b2) - c

    for delta in (1e-2, 1e-4, 1e-6):
        f_hi = excess(1 - delta)
        if f_hi < 0:
            f_lo = excess(-1.0)
            return _root(excess, -1.0, 1 - delta, f_lo, f_hi, 1e-12)
    return 1.0


def critical_sigma_w2(act, sigma_b2: float = 0.0) -> float:
    """The ``σ_w²`` at which ``χ₁(q*) = 1`` for bias variance ``σ_b²``: the edge of chaos.

    relu: 2 (any σ_b²); odd activations with slope 1 at 0 and ``σ_b² = 0``: 1; tanh with ``σ_b² = 0.05``:
    1.76095.
    """
    act = resolve(act)
    sigma_b2 = non_negative("sigma_b2", sigma_b2)
    if act.closed_form is not None:
        return 2.0 / (1 + act.closed_form**2)

    def excess(log_s: float) -> float:
        s = math.exp(log_s)
        q = fixed_point_q(act, s, sigma_b2)
        q = q if math.isfinite(q) else _Q_MAX
        return chi1(act, q, s) - 1

    lo, hi = math.log(1e-3), math.log(1e3)
    f_lo, f_hi = excess(lo), excess(hi)
    if (f_lo > 0) == (f_hi > 0):
        raise ValueError(f"{act.name} has no edge of chaos for σ_w² in [1e-3, 1e3] at σ_b² = {sigma_b2:g}")
    return math.exp(_root(excess, lo, hi, f_lo, f_hi, 1e-13))


def _kink_jumps(act: Activation) -> list[tuple[float, float]]:
    """``(k, φ'(k+) − φ'(k−))`` at each kink: the delta terms of ``φ''``."""
    if not act.kinks:
        return []
    k = torch.tensor(act.kinks, dtype=torch.float64)
    step = 1e-7
    right = derivative(act, k + step)
    left = derivative(act, k - step)
    return [(float(a), float(b)) for a, b in zip(k, right - left)]


def _second_derivative_phi(act: Activation, q: float) -> float:
    """``E[φ''(√q z) φ(√q z)]``, with the delta terms ``Σ jump_k·φ(k)·p_q(k)`` at kinks."""
    def integrand(x):
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            y = evaluate(act, x)
            (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
            if not g.requires_grad:
                return torch.zeros_like(x)
            (g2,) = torch.autograd.grad(g.sum(), x, allow_unused=True)
        return (torch.zeros_like(x) if g2 is None else g2) * y.detach()

    smooth = expect(integrand, q, kinks=act.kinks)
    deltas = 0.0
    for k, jump in _kink_jumps(act):
        value = float(evaluate(act, torch.tensor([k], dtype=torch.float64))[0])
        deltas += jump * value * math.exp(-k * k / (2 * q)) / math.sqrt(2 * math.pi * q)
    return smooth + deltas


@dataclass(frozen=True)
class MeanField:
    """Mean-field quantities of ``(act, σ_w², σ_b²)``; ``phase`` is ordered, critical or chaotic."""

    activation: str
    sigma_w2: float
    sigma_b2: float
    q_star: float
    chi1: float
    c_star: float
    chi_c: float
    xi_q: float
    xi_c: float
    phase: str

    def to_dict(self) -> dict:
        return asdict(self)


def _depth_scale(rate: float) -> float:
    if not math.isfinite(rate) or rate <= 0:
        return math.nan
    return math.inf if rate >= 1 else -1.0 / math.log(rate)


def analyse(act, sigma_w2: float, sigma_b2: float = 0.0, q0: float = 1.0) -> MeanField:
    """``q*``, ``χ₁``, ``c*``, ``χ_c``, ``ξ_q``, ``ξ_c`` and the phase for one ``(σ_w², σ_b²)``."""
    act = resolve(act)
    sigma_w2, sigma_b2 = non_negative("sigma_w2", sigma_w2), non_negative("sigma_b2", sigma_b2)
    q = fixed_point_q(act, sigma_w2, sigma_b2, q0)
    if not math.isfinite(q):
        c1 = chi1(act, _Q_MAX, sigma_w2)
        return MeanField(act.name, sigma_w2, sigma_b2, q, c1, math.nan, math.nan, math.nan, math.nan, "unbounded")
    c1 = chi1(act, q, sigma_w2)
    c_star = fixed_point_c(act, q, sigma_w2, sigma_b2)
    if c_star < 1:
        d = lambda x: derivative(act, x)  # noqa: E731
        chi_c = sigma_w2 * expect_pair(d, d, q, c_star, act.kinks, act.kinks)
    else:
        chi_c = c1
    xi_q = _depth_scale(c1 + sigma_w2 * _second_derivative_phi(act, q)) if q > 0 else math.nan
    phase = "critical" if math.isclose(c1, 1.0, abs_tol=1e-6) else "ordered" if c1 < 1 else "chaotic"
    return MeanField(act.name, sigma_w2, sigma_b2, q, c1, c_star, chi_c, xi_q, _depth_scale(chi_c), phase)


@dataclass(frozen=True)
class Prediction:
    """Per-layer mean-field prediction for an MLP of ``depth`` Linear layers (index 0 = first layer).

    Attributes:
        q: forward variance of each Linear layer's output (pre-activation) ``q^l``.
        post_mean, post_var: mean and variance of ``φ(h^l)`` for the hidden layers (``depth − 1`` values).
        grad: variance of ``∂ℓ/∂h^l`` relative to the last layer's (``grad[-1] = 1``).
        chi: per-layer backward factor ``q̃^l / q̃^{l+1}`` (``depth − 1`` values).
    """

    activation: str
    depth: int
    sigma_w2: tuple[float, ...]
    sigma_b2: float
    q0: float
    widths: tuple[int, ...] | None
    q: tuple[float, ...]
    post_mean: tuple[float, ...]
    post_var: tuple[float, ...]
    grad: tuple[float, ...]
    chi: tuple[float, ...]

    def table(self, every: int = 1) -> str:
        """Per-layer text table; ``every`` prints every k-th layer (and the last)."""
        rows = []
        for i in range(self.depth):
            if i % every and i != self.depth - 1:
                continue
            hidden = i < self.depth - 1
            rows.append([
                str(i + 1),
                "" if self.widths is None else str(self.widths[i + 1]),
                f"{self.sigma_w2[i]:.4g}",
                f"{self.q[i]:.5g}",
                f"{_clean(self.post_mean[i], self.post_var[i]):.4g}" if hidden else "",
                f"{self.post_var[i]:.5g}" if hidden else "",
                f"{self.grad[i]:.5g}",
            ])
        header = ["layer", "width", "σ_w²", "q (fwd var)", "E φ(h)", "Var φ(h)", "grad var (rel.)"]
        return format_table(header, rows, "rrrrrrr")

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)


def _clean(mean: float, var: float) -> float:
    """A mean below quadrature rounding relative to the std prints as 0."""
    return 0.0 if abs(mean) < 1e-12 * math.sqrt(max(var, 0.0)) else mean


def _sigma_w2_per_layer(sigma_w2, depth: int, widths) -> tuple[float, ...]:
    if isinstance(sigma_w2, str):
        if sigma_w2.lower() != "xavier":
            raise ValueError(f"sigma_w2 must be a number, a list of {depth} numbers, or 'xavier'; got {sigma_w2!r}")
        if widths is None:
            return (1.0,) * depth
        # Xavier: Var[W] = 2/(n_{l−1} + n_l) = σ_w²/n_{l−1}
        return tuple(2 * widths[i] / (widths[i] + widths[i + 1]) for i in range(depth))
    if isinstance(sigma_w2, (int, float)) and not isinstance(sigma_w2, bool):
        return (non_negative("sigma_w2", sigma_w2),) * depth
    values = tuple(non_negative("sigma_w2", s) for s in sigma_w2)
    if len(values) != depth:
        raise ValueError(f"sigma_w2 has {len(values)} values for {depth} layers")
    return values


def predict(
    act,
    depth: int,
    *,
    sigma_w2: float | Sequence[float] | str = 1.0,
    sigma_b2: float = 0.0,
    q0: float = 1.0,
    widths: Sequence[int] | None = None,
) -> Prediction:
    """Predicted per-layer forward and backward variances of ``Linear → φ → … → Linear``.

    Args:
        act: the activation between layers (none after the last).
        depth: number of Linear layers.
        sigma_w2: ``σ_w²`` (``Var[W] = σ_w²/fan_in``), per layer, or ``"xavier"`` for
            ``σ_w² = 2n_{l−1}/(n_{l−1} + n_l)``.
        sigma_b2: bias variance.
        q0: mean square of the network's input units.
        widths: layer sizes ``n_0 … n_depth`` for unequal widths (default: all equal).

    Returns:
        :class:`Prediction`; ``q[0] = σ_w²·q0 + σ_b²`` and ``q[l] = σ_w²·E[φ(√q[l−1] z)²] + σ_b²``;
        ``grad[l] = grad[l+1]·(n_{l+1}/n_l)·σ_{w,l+1}²·E[φ'(√q[l] z)²]``.
    """
    act = resolve(act)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be an integer >= 1, got {depth!r}")
    if widths is not None:
        widths = tuple(int(n) for n in widths)
        if len(widths) != depth + 1 or min(widths) < 1:
            raise ValueError(f"widths must be depth + 1 = {depth + 1} positive sizes, got {widths}")
    sw = _sigma_w2_per_layer(sigma_w2, depth, widths)
    sigma_b2 = non_negative("sigma_b2", sigma_b2)
    q0 = finite("q0", q0)
    q = [sw[0] * q0 + sigma_b2]
    post_mean, post_var = [], []
    for layer in range(1, depth):
        second = _second_moment(act, q[-1])
        mean = expect(act, q[-1])
        post_mean.append(mean)
        post_var.append(second - mean * mean)
        q.append(sw[layer] * second + sigma_b2)
    grad = [1.0] * depth
    chi = [0.0] * (depth - 1)
    for layer in range(depth - 2, -1, -1):
        ratio = 1.0 if widths is None else widths[layer + 2] / widths[layer + 1]
        chi[layer] = ratio * sw[layer + 1] * _grad_second_moment(act, q[layer])
        grad[layer] = grad[layer + 1] * chi[layer]
    return Prediction(act.name, depth, sw, sigma_b2, q0, widths, tuple(q), tuple(post_mean), tuple(post_var),
                      tuple(grad), tuple(chi))
