"""Schoenholz et al. (2017): deep tanh nets train only within a few correlation lengths ``ξ_c`` of the
order-to-chaos transition."""

from __future__ import annotations

import math

import torch

from ..init import variance_scaling_
from ..models import mlp
from ..theory import analyse, critical_sigma_w2
from ._context import Context
from ._datasets import load, real_data
from ._registry import register
from ._train import train

SIGMA_B2 = 0.05


def _net(depth, width, data, sigma_w2, seed):
    """``W ~ N(0, σ_w²/fan_in)``, ``b ~ N(0, σ_b²)``: the mean-field ensemble."""
    model = mlp(depth, width, "tanh", in_features=data.features, out_features=data.classes)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model:
            if isinstance(m, torch.nn.Linear):
                variance_scaling_(m.weight, sigma_w2, "fan_in", "normal", generator=generator)
                m.bias.normal_(0.0, math.sqrt(SIGMA_B2), generator=generator)
    return model


@register("trainability", "Schoenholz et al. 2017: trainable depth follows 6·ξ_c",
          "tanh, σ_b² = 0.05: test accuracy over a grid of σ_w² × depth, with the computed 6·ξ_c overlaid; "
          "deep nets train only near the critical σ_w² ≈ 1.76")
def run(ctx: Context) -> None:
    data = load(real_data(ctx.quick), ctx.quick)
    if ctx.quick:
        sigma_w2s, depths, width, steps, lr = (0.6, 1.76, 4.0), (4, 24), 32, 200, 1e-3
    else:
        sigma_w2s, depths, width, steps, lr = (0.6, 1.0, 1.4, 1.76, 2.2, 3.0, 4.0), (5, 10, 20, 40, 60), 128, 800, 1e-4
    # RMSProp with a small step, as Schoenholz et al. train: SGD with momentum at one learning rate for
    # all depths diverges on the deepest critical nets and would measure the optimizer, not the init
    batch = 64
    critical = critical_sigma_w2("tanh", SIGMA_B2)
    xi = {s: analyse("tanh", s, SIGMA_B2).xi_c for s in sigma_w2s}
    accuracy = {}
    with ctx.steps(len(sigma_w2s) * len(depths) * steps, f"σ_w² × depth grid on {data.name}") as advance:
        for depth in depths:
            for s in sigma_w2s:
                model = _net(depth, width, data, s, ctx.seed)
                history = train(model, data, steps=steps, lr=lr, batch_size=batch, rmsprop=True,
                                generator=ctx.generator(60), evals=1, on_step=advance)
                accuracy[(s, depth)] = 100.0 - history.final_test_error
    ctx.results.update(data=data.name, width=width, steps=steps, optimizer="RMSProp", lr=lr, batch=batch,
                       sigma_b2=SIGMA_B2, critical_sigma_w2=critical, sigma_w2=sigma_w2s, depths=depths,
                       xi_c={str(s): v for s, v in xi.items()},
                       test_accuracy={f"{s}@{d}": a for (s, d), a in accuracy.items()})
    ctx.table(f"test accuracy % of tanh MLPs (width {width}) on {data.name} after {steps} steps, RMSProp "
              f"lr {lr:g}, batch {batch}", ["depth", *[f"σ_w² = {s}" for s in sigma_w2s]],
              [[d, *[accuracy[(s, d)] for s in sigma_w2s]] for d in depths]
              + [["6·ξ_c", *[6 * xi[s] for s in sigma_w2s]]])

    def draw(ax):
        grid = [[accuracy[(s, d)] for s in sigma_w2s] for d in depths]
        image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis",
                          extent=(-0.5, len(sigma_w2s) - 0.5, -0.5, len(depths) - 0.5))
        ax.set_xticks(range(len(sigma_w2s)), [f"{s:g}" for s in sigma_w2s])
        ax.set_yticks(range(len(depths)), [str(d) for d in depths])
        fine = [sigma_w2s[0] + k * (sigma_w2s[-1] - sigma_w2s[0]) / 60 for k in range(61)]
        # map σ_w² and depth to the heat map's index axes by linear interpolation between grid points
        xs = [_index(sigma_w2s, s) for s in fine]
        ys = [_index(depths, min(6 * analyse("tanh", s, SIGMA_B2).xi_c, depths[-1] * 2)) for s in fine]
        ax.plot(xs, ys, "w--", label="6·ξ_c")
        ax.axvline(_index(sigma_w2s, critical), color="w", lw=0.6)
        ax.set_ylim(-0.5, len(depths) - 0.5)
        ax.set(xlabel="σ_w²", ylabel="depth", title=f"test accuracy %, tanh, σ_b² = {SIGMA_B2}")
        ax.legend(loc="upper right")
        ax.figure.colorbar(image, ax=ax)

    ctx.figure("trainability.png", draw, size=(7, 5))
    ctx.note(f"Critical σ_w² for tanh at σ_b² = {SIGMA_B2}: {critical:.5f} (χ₁ = 1), where ξ_c diverges.")


def _index(grid, value: float) -> float:
    """Position of ``value`` on an axis whose ticks are ``grid`` (linear between ticks, extrapolated)."""
    for i in range(len(grid) - 1):
        if value <= grid[i + 1] or i == len(grid) - 2:
            return i + (value - grid[i]) / (grid[i + 1] - grid[i])
    return 0.0
