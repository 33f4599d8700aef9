"""Taylor expansions and the seed's linear-regime test, by automatic differentiation in float64.

The seed: a layer followed by ``σ(x) ≈ αx + β`` maps mean and variance as ``E[h] = β``,
``Var[h] = α²·Var[h']``, so keeping both needs ``β = 0`` and ``α = ±1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._checks import finite
from ._registry import Activation, evaluate, resolve

__all__ = ["Taylor", "LinearRegime", "taylor", "linear_regime", "normalize", "normalizing_affine"]

_SIDE_STEP = 1e-6  # one-sided derivatives: evaluated at at ± δ and extrapolated back to ``at``
_KINK_TOL = 1e-7


def _derivatives(act: Activation, at: float, order: int) -> list[float]:
    """``[f(at), f'(at), …, f^(order)(at)]`` by repeated autograd in float64."""
    x = torch.tensor(float(at), dtype=torch.float64, requires_grad=True)
    out = []
    with torch.enable_grad():
        y = evaluate(act, x.reshape(1)).reshape(())
        for k in range(order + 1):
            out.append(float(y.detach()))
            if k == order:
                break
            if not y.requires_grad:
                out.extend([0.0] * (order - k))
                break
            (g,) = torch.autograd.grad(y, x, create_graph=True, allow_unused=True)
            if g is None:
                out.extend([0.0] * (order - k))
                break
            y = g
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"activation {act.name} has a NaN/Inf derivative at x = {at}")
    return out


def _one_sided(act: Activation, at: float, order: int, side: int) -> list[float]:
    """Derivatives from one side: at ``at + side·δ``, moved back to ``at`` with two Taylor terms."""
    d = _derivatives(act, at + side * _SIDE_STEP, order + 2)
    h = -side * _SIDE_STEP
    return [d[k] + h * d[k + 1] + h * h / 2 * d[k + 2] for k in range(order + 1)]


def _agree(a: float, b: float) -> bool:
    return abs(a - b) <= _KINK_TOL * (1.0 + abs(a) + abs(b))


@dataclass(frozen=True)
class Taylor:
    """Taylor coefficients ``c_k = f^(k)(at)/k!`` of an activation, or why they do not exist.

    Attributes:
        activation: name.
        at: expansion point.
        order: highest order asked for.
        coefficients: ``(c_0, …, c_order)``, or ``None`` when ``f`` has a kink at ``at`` (a jump in one of
            its first ``order`` derivatives).
        left, right: one-sided coefficients (equal to ``coefficients`` where those exist).
        smooth_to: the highest ``k`` for which derivatives 0…k agree from both sides (-1 for a jump in
            the value itself), capped at ``order``.
    """

    activation: str
    at: float
    order: int
    coefficients: tuple[float, ...] | None
    left: tuple[float, ...]
    right: tuple[float, ...]
    smooth_to: int

    @property
    def exists(self) -> bool:
        return self.coefficients is not None

    def __str__(self) -> str:
        if self.exists:
            terms = " ".join(f"{c + 0.0:+.10g}·x^{k}" for k, c in enumerate(self.coefficients))
            return f"{self.activation} at {self.at:g}: {terms} + O(x^{self.order + 1})"
        return (
            f"{self.activation} has a kink at {self.at:g}: no Taylor expansion beyond order "
            f"{self.smooth_to}; left coefficients {_fmt(self.left)}, right {_fmt(self.right)}"
        )


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v + 0.0:.10g}" for v in values) + ")"


def taylor(act, order: int = 3, at: float = 0.0) -> Taylor:
    r"""Taylor coefficients of ``act`` at ``at`` up to ``order``, by autograd in float64.

    ``sigmoid`` at 0 gives ``(1/2, 1/4, 0, −1/48)``, ``tanh`` ``(0, 1, 0, −1/3)``, the scaled sigmoid
    ``(0, 1, 0, −1/12)``. At a kink (relu, leaky relu, hardtanh's corners, elu/selu at 0, or a point where
    a callable's one-sided derivatives differ) it returns the one-sided coefficients and
    ``coefficients=None`` instead of a wrong number.
    """
    act = resolve(act)
    if isinstance(order, bool) or not isinstance(order, int) or order < 0:
        raise ValueError(f"order must be an integer >= 0, got {order!r}")
    at = finite("at", at)
    factorials = [math.factorial(k) for k in range(order + 1)]
    left = _one_sided(act, at, order, -1)
    right = _one_sided(act, at, order, +1)
    known_kink = any(abs(at - k) < 1e-12 for k in act.kinks)
    agree = [_agree(a, b) for a, b in zip(left, right)]
    smooth_to = order if all(agree) else agree.index(False) - 1
    exact = _derivatives(act, at, order)
    # where both sides agree the derivative exists: report autograd's exact value, not the extrapolation
    left = exact[: smooth_to + 1] + left[smooth_to + 1 :]
    right = exact[: smooth_to + 1] + right[smooth_to + 1 :]
    left_c = tuple(v / f for v, f in zip(left, factorials))
    right_c = tuple(v / f for v, f in zip(right, factorials))
    if smooth_to < order or (known_kink and not all(agree)):
        return Taylor(act.name, at, order, None, left_c, right_c, smooth_to)
    return Taylor(act.name, at, order, right_c, left_c, right_c, order)


@dataclass(frozen=True)
class LinearRegime:
    """The seed's check ``σ(x) ≈ αx + β`` near 0 with ``β = 0, α = ±1``.

    Attributes:
        beta: ``σ(0)``.
        alpha: ``σ'(0)``, or ``None`` at a kink (then see ``alpha_left``/``alpha_right``).
        cubic: the ``x³`` coefficient ``σ'''(0)/6`` (``None`` when the expansion stops earlier).
        holds: ``β = 0`` and ``α = ±1`` within ``tol``.
        holds_right: the same on ``x ≥ 0`` only (the seed's reading of relu: ``relu(x) = x``, x ≥ 0).
    """

    activation: str
    beta: float
    alpha: float | None
    alpha_left: float
    alpha_right: float
    quadratic: float | None
    cubic: float | None
    holds: bool
    holds_right: bool

    @property
    def check(self) -> str:
        """``✓``, ``✓ (x ≥ 0)`` or ``✗``."""
        return "✓" if self.holds else "✓ (x ≥ 0)" if self.holds_right else "✗"

    def verdict(self) -> str:
        name = self.activation
        if self.holds:
            return f"{name}: β = {self.beta:.3g}, α = {self.alpha:.6g}: keeps mean and variance near 0"
        if self.alpha is None:
            side = "; holds for x ≥ 0" if self.holds_right else ""
            return (f"{name}: kink at 0 (slopes {self.alpha_left:.6g} left, {self.alpha_right:.6g} right), "
                    f"β = {self.beta:.3g}{side}")
        reasons = []
        if not math.isclose(self.beta, 0.0, abs_tol=1e-9):
            reasons.append(f"β = {self.beta:.6g} ≠ 0 shifts the mean")
        if not math.isclose(abs(self.alpha), 1.0, rel_tol=1e-9):
            reasons.append(f"α = {self.alpha:.6g} scales the variance by α² = {self.alpha ** 2:.6g}")
        return f"{name}: " + "; ".join(reasons)


def linear_regime(act, tol: float = 1e-9) -> LinearRegime:
    """``β = act(0)``, ``α = act'(0)``, the cubic term, and whether ``β = 0, α = ±1`` holds within ``tol``."""
    tol = finite("tol", tol)
    t = taylor(act, order=3)
    beta = t.right[0] if t.smooth_to >= 0 else math.nan
    alpha = t.right[1] if t.smooth_to >= 1 else None
    quadratic = t.right[2] if t.smooth_to >= 2 else None
    cubic = t.right[3] if t.smooth_to >= 3 else None
    beta_ok = t.smooth_to >= 0 and abs(beta) <= tol
    holds = beta_ok and alpha is not None and abs(abs(alpha) - 1) <= tol
    holds_right = beta_ok and abs(abs(t.right[1]) - 1) <= tol
    return LinearRegime(t.activation, beta, alpha, t.left[1], t.right[1], quadratic, cubic, holds, holds_right)


def normalizing_affine(act) -> tuple[float, float]:
    """``(a, b)`` with ``a·act(x) + b`` having ``α = 1, β = 0``: ``a = 1/act'(0)``, ``b = −act(0)/act'(0)``."""
    act = resolve(act)
    regime = linear_regime(act)
    if regime.alpha is None:
        raise ValueError(
            f"cannot normalize {act.name}: it has a kink at 0 (slopes {regime.alpha_left:g} and "
            f"{regime.alpha_right:g}), so act'(0) is undefined"
        )
    if abs(regime.alpha) < 1e-12:
        raise ValueError(f"cannot normalize {act.name}: act'(0) = 0, no rescaling makes the slope 1")
    a = 1.0 / regime.alpha
    return a, -regime.beta * a


def normalize(act) -> Activation:
    """The affine rescaling ``a·act(x) + b`` with slope 1 and value 0 at the origin.

    For sigmoid (``β = 1/2``, ``α = 1/4``) it is exactly ``4·sigmoid(x) − 2``, the seed's scaled sigmoid.
    """
    act = resolve(act)
    a, b = normalizing_affine(act)
    fn = act.fn
    name = f"{a:.6g}·{act.name}(x) {'-' if b < 0 else '+'} {abs(b):.6g}"
    return Activation(name, lambda x: a * fn(x) + b, act.kinks)
