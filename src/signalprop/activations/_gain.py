"""Weight gains for any activation, from Gaussian expectations instead of a lookup table.

For pre-activations ``z ~ N(0, 1)`` and ``Var[W] = gain²/fan``:

* ``forward``  ``1/sqrt(E[φ(z)²])``: keeps the second moment of the pre-activations (He et al. 2015);
* ``centred``  ``1/sqrt(Var[φ(z)])``: keeps their variance once the mean is removed (NFNets' γ,
  Brock et al. 2021);
* ``backward`` ``1/sqrt(E[φ'(z)²])``: keeps the variance of the back-propagated gradient;
* ``critical`` ``σ_w`` with ``χ₁ = σ_w²·E[φ'(√q*·z)²] = 1`` at the fixed point ``q*`` for a given
  ``σ_b²``: the edge of chaos (Poole et al. 2016; Schoenholz et al. 2017).

For identity, relu and leaky relu (slope ``a``) the expectations have closed forms:
``E[φ²] = E[φ'²] = (1 + a²)/2`` and ``E[φ] = (1 − a)/sqrt(2π)``; those are used (bit-exact with
``torch.nn.init.calculate_gain``), and the tests check them against the quadrature.
"""

from __future__ import annotations

import math

from .._checks import choice, non_negative
from ..theory._gaussian import expect
from ._registry import derivative, evaluate, resolve

__all__ = ["CRITERIA", "gain", "moments"]

CRITERIA = ("forward", "centred", "centered", "backward", "critical")


def moments(act) -> dict[str, float]:
    """``E[φ(z)]``, ``E[φ(z)²]`` and ``E[φ'(z)²]`` for ``z ~ N(0, 1)``."""
    act = resolve(act)
    if act.closed_form is not None:
        a = act.closed_form
        second = (1 + a**2) / 2
        return {"mean": (1 - a) / math.sqrt(2 * math.pi), "second": second, "grad_second": second}
    return {
        "mean": expect(act),
        "second": expect(lambda x: evaluate(act, x) ** 2, kinks=act.kinks),
        "grad_second": expect(lambda x: derivative(act, x) ** 2, kinks=act.kinks),
    }


def gain(act, criterion: str = "forward", *, sigma_b2: float = 0.0) -> float:
    """The weight-scale multiplier for ``act`` under ``criterion`` (see the module docs).

    Args:
        act: a name, an ``nn.Module`` or a callable on tensors.
        criterion: ``forward`` (default), ``centred``, ``backward`` or ``critical``.
        sigma_b2: bias variance, for ``critical`` only.

    Example:
        >>> round(gain("tanh"), 6), round(gain("relu", "centred"), 6)
        (1.592537, 1.712859)
    """
    criterion = choice("criterion", criterion, CRITERIA)
    sigma_b2 = non_negative("sigma_b2", sigma_b2)
    if sigma_b2 and criterion != "critical":
        raise ValueError("sigma_b2 only applies to the critical criterion")
    act = resolve(act)
    if criterion == "critical":
        from ..theory._meanfield import critical_sigma_w2

        return math.sqrt(critical_sigma_w2(act, sigma_b2))
    if act.closed_form is not None and criterion in ("forward", "backward"):
        return math.sqrt(2.0 / (1 + act.closed_form**2))  # torch's expression, for bit parity
    m = moments(act)
    value = {
        "forward": m["second"],
        "backward": m["grad_second"],
    }.get(criterion, m["second"] - m["mean"] ** 2)
    if not value > 0:
        raise ValueError(f"the {criterion} gain of {act.name} is undefined: the expectation is {value:g}")
    return 1.0 / math.sqrt(value)
