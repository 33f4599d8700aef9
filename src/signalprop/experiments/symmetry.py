"""The seed's bonus question: why parameters cannot all start at the same constant."""

from __future__ import annotations

import torch
from torch import nn

from ..init import init_model
from ._context import Context
from ._datasets import load
from ._registry import register
from ._train import train

VARIANTS = {"constant": ("constant:0.1", 0.0), "constant + dropout": ("constant:0.1", 0.2),
            "Xavier uniform": ("xavier_uniform", 0.0)}


def _net(features: int, width: int, classes: int, hidden: int, dropout: float) -> nn.Sequential:
    layers, n = [], features
    for _ in range(hidden):
        layers += [nn.Linear(n, width), nn.Tanh()] + ([nn.Dropout(dropout)] if dropout else [])
        n = width
    return nn.Sequential(*layers, nn.Linear(n, classes))


def unit_spread(model: nn.Sequential, x: torch.Tensor) -> dict[str, float]:
    """Per hidden Linear: ``max_j ‖W_j − W_0‖_∞`` over its rows (incoming weights of unit ``j``), and the
    same for its outputs on ``x`` in eval mode; exactly 0 while every unit is a copy of unit 0."""
    spread = {}
    with torch.no_grad():
        model.eval()
        h = x
        linears = [i for i, m in enumerate(model) if isinstance(m, nn.Linear)][:-1]
        for i, m in enumerate(model):
            h = m(h)
            if i in linears:
                spread[f"{i}.weight"] = float((m.weight - m.weight[:1]).abs().max())
                spread[f"{i}.output"] = float((h - h[:, :1]).abs().max())
        model.train()
    return spread


@register("symmetry", "Constant init never breaks symmetry; random init and dropout do",
          "every hidden unit stays an exact copy under SGD with constant init, and the loss stalls")
def run(ctx: Context) -> None:
    data = load("digits", ctx.quick)
    steps, width, hidden = (300, 32, 2) if ctx.quick else (3000, 64, 3)
    results, rows, curves = {}, [], {}
    with ctx.steps(steps * len(VARIANTS), f"{len(VARIANTS)} × {steps} SGD steps on digits") as advance:
        for offset, (label, (scheme, dropout)) in enumerate(VARIANTS.items()):
            model = _net(data.features, width, data.classes, hidden, dropout)
            init_model(model, scheme, "zeros", generator=ctx.generator(10 + offset))
            before = unit_spread(model, data.x_test)
            history = train(model, data, steps=steps, lr=0.1, batch_size=32, generator=ctx.generator(20),
                            on_step=advance)
            after = unit_spread(model, data.x_test)
            results[label] = {"spread_before": before, "spread_after": after, "history": history.to_dict()}
            curves[label] = history
            rows.append([label, max(before.values()), max(after.values()), history.train_loss[-1],
                         history.final_test_error])
    ctx.results.update(steps=steps, width=width, hidden_layers=hidden, variants=results)
    ctx.table(f"{hidden} tanh hidden layers of {width} on digits, SGD lr 0.1, batch 32, {steps} steps",
              ["init", "max unit difference at init", f"after {steps} steps", "final train loss",
               "test error %"], rows)

    def draw(axes):
        for label, h in curves.items():
            axes[0].plot(h.step, h.train_loss, label=label)
            axes[1].plot(h.step, h.test_error, label=label)
        axes[0].set_ylabel("train loss")
        axes[1].set_ylabel("test error %")
        for ax in axes:
            ax.set_xlabel("step")
        axes[0].legend()

    ctx.figure("symmetry.png", draw, size=(10, 4), ncols=2)
    ctx.note("'max unit difference' is the largest |W_j − W_0| or |h_j − h_0| over the hidden units of "
             "every hidden layer: exactly 0.0 means every unit is still a copy of the first.")
