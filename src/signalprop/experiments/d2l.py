"""The seed's opening numbers: sigmoid's vanishing derivative and the product of 100 random matrices."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import digamma

from ._context import Context
from ._registry import register


def top_lyapunov(n: int, variance: float = 1.0) -> float:
    """Top Lyapunov exponent of products of ``n × n`` matrices with i.i.d. ``N(0, variance)`` entries.

    ``‖G u‖²/variance ~ χ²_n`` for any unit ``u`` and the steps are independent, so
    ``λ₁ = E[log ‖G u‖] = ½(ln 2 + ψ(n/2) + ln variance)`` (Cohen & Newman 1984); ``log‖M_k x‖ = k·λ₁`` on
    average, for every ``k``.
    """
    return 0.5 * (math.log(2.0) + float(digamma(n / 2)) + math.log(variance))


def _products(kind: str, seeds: int, factors: int, n: int, generator: torch.Generator) -> dict[str, np.ndarray]:
    """log10 of ``‖M e₁‖``, ``‖M‖_F`` and ``max|M_ij|`` for ``M = G_1 ⋯ G_factors``, per seed, in float64."""
    m = torch.eye(n, dtype=torch.float64).expand(seeds, n, n).clone()
    log_scale = torch.zeros(seeds, dtype=torch.float64)  # renormalize as we go: no overflow at any depth
    for _ in range(factors):
        g = torch.randn(seeds, n, n, generator=generator, dtype=torch.float64)
        if kind == "scaled":
            g = g / math.sqrt(n)
        elif kind == "orthogonal":
            q, r = torch.linalg.qr(g)
            g = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)  # Haar measure
        m = m @ g
        norm = torch.linalg.matrix_norm(m)
        log_scale += torch.log10(norm)
        m = m / norm[:, None, None]
    return {
        "vector": (log_scale + torch.log10(torch.linalg.vector_norm(m[:, :, 0], dim=1))).numpy(),
        "frobenius": log_scale.numpy(),
        "max_entry": (log_scale + torch.log10(m.abs().amax((1, 2)))).numpy(),
    }


@register("d2l", "The seed's numbers: sigmoid's gradient and a product of 100 random matrices",
          "σ'(0) = 1/4 and σ'(±8) ≈ 3.4e-4; log10 of a product of 100 4×4 Gaussian matrices against the "
          "top Lyapunov exponent, and with 1/√n scaling or orthogonal factors")
def run(ctx: Context) -> None:
    x = torch.arange(-8.0, 8.0, 0.1, dtype=torch.float64, requires_grad=True)
    y = torch.sigmoid(x)
    (grad,) = torch.autograd.grad(y.sum(), x)
    x0 = torch.tensor([0.0, -8.0, 8.0], dtype=torch.float64, requires_grad=True)
    (g0,) = torch.autograd.grad(torch.sigmoid(x0).sum(), x0)
    ctx.results["sigmoid_grad"] = {"at_0": float(g0[0]), "at_-8": float(g0[1]), "at_8": float(g0[2])}
    ctx.table("sigmoid's derivative σ'(x) = σ(x)(1 − σ(x))", ["x", "σ'(x)", "closed form"],
              [[f"{v:g}", float(g), float(math.exp(-abs(v)) / (1 + math.exp(-abs(v))) ** 2)]
               for v, g in zip((0.0, -8.0, 8.0), g0)])

    def plot_sigmoid(ax):
        ax.plot(x.detach(), y.detach(), label="sigmoid")
        ax.plot(x.detach(), grad, label="gradient")
        ax.set_xlabel("x")
        ax.legend()

    ctx.figure("sigmoid.png", plot_sigmoid, size=(5, 3.5))

    seeds = 200 if ctx.quick else 20000
    n, factors = 4, 100
    rows, summary = [], {}
    theory = {"gaussian": top_lyapunov(n), "scaled": top_lyapunov(n, 1 / n), "orthogonal": 0.0}
    with ctx.steps(3, f"{seeds} products of {factors} matrices") as advance:
        for offset, kind in enumerate(("gaussian", "scaled", "orthogonal")):
            logs = _products(kind, seeds, factors, n, ctx.generator(offset))
            predicted = factors * theory[kind] / math.log(10)
            stats = {key: {"mean": float(v.mean()), "median": float(np.median(v)), "p5": float(np.percentile(v, 5)),
                           "p95": float(np.percentile(v, 95))} for key, v in logs.items()}
            summary[kind] = {"predicted_log10_vector": predicted, **stats}
            se = float(logs["vector"].std() / math.sqrt(seeds))
            summary[kind]["vector_mean_se"] = se
            rows.append([kind, predicted, stats["vector"]["mean"], se, stats["frobenius"]["median"],
                         stats["max_entry"]["median"], f"{stats['max_entry']['p5']:.3g} … {stats['max_entry']['p95']:.3g}"])
            advance()
    ctx.results["products"] = {"seeds": seeds, "factors": factors, "n": n, **summary}
    ctx.table(f"log10 of a product of {factors} random {n}×{n} matrices over {seeds} seeds",
              ["factors", "theory: 100·λ₁/ln 10", "mean log10‖M e₁‖", "± s.e.", "median log10‖M‖_F",
               "median log10 max|M_ij|", "5–95% of log10 max|M_ij|"], rows)
    ctx.note("The seed's printouts (~1e22–1e27) are single draws from the 'gaussian' row's 5–95% band; "
             "the band's centre is fixed by the top Lyapunov exponent λ₁ = ½(ln 2 + ψ(2)).")
