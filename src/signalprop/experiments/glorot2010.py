"""Glorot & Bengio (2010), Table 1 and Figures 6–7: five hidden layers, standard vs normalized init."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..activations import resolve
from ..init import init_model
from ._context import Context
from ._datasets import load, real_data
from ._registry import register
from ._train import train

# (label, activation, scheme): "N" is the normalized (Xavier uniform) init, the rest the standard
# U[±1/√fan_in]; biases are 0 throughout, as in the paper.
NETWORKS = (("Sigmoid", "sigmoid", "standard"), ("Tanh", "tanh", "standard"), ("Tanh N", "tanh", "xavier_uniform"),
            ("Softsign", "softsign", "standard"), ("Softsign N", "softsign", "xavier_uniform"))
# Table 1 of the paper, test error %.
PAPER = {"Shapeset-3×2": {"Sigmoid": 82.61, "Tanh": 27.15, "Tanh N": 15.60, "Softsign": 16.27, "Softsign N": 16.06},
         "MNIST": {"Sigmoid": 2.21, "Tanh": 1.76, "Tanh N": 1.64, "Softsign": 1.64, "Softsign N": 1.72}}
PAPER_JACOBIAN = {"standard": 0.5, "xavier_uniform": 0.8}
LR_GRID = (0.01, 0.03, 0.1)


def _net(features: int, width: int, classes: int, activation: str, scheme: str, seed: int) -> nn.Sequential:
    act = resolve(activation)
    layers, n = [], features
    for _ in range(5):
        layers += [nn.Linear(n, width), act.module()]
        n = width
    model = nn.Sequential(*layers, nn.Linear(n, classes))
    init_model(model, scheme, "zeros", generator=torch.Generator().manual_seed(seed))
    return model


def mean_jacobian_singular_value(model: nn.Sequential, x: torch.Tensor) -> float:
    """Mean singular value of ``J_i = ∂h^{i+1}/∂h^i = diag(φ'(W_{i+1} h^i)) W_{i+1}`` over the hidden-to-hidden
    layers and the rows of ``x`` (the quantity of the paper's Section 4.2.1)."""
    linears = [m for m in model if isinstance(m, nn.Linear)]
    act = model[1]
    values = []
    with torch.no_grad():
        h = act(linears[0](x))
        for layer in linears[1:-1]:
            pre = layer(h).detach().requires_grad_(True)
            with torch.enable_grad():
                (slope,) = torch.autograd.grad(act(pre).sum(), pre)  # elementwise φ'(pre)
            for row in range(len(x)):
                values.append(torch.linalg.svdvals(slope[row, :, None] * layer.weight).mean())
            h = act(pre)
    return float(torch.stack(values).mean())


def _histograms(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> tuple[list, list]:
    """Each hidden layer's activation values and back-propagated gradients ``∂ℓ/∂(W h + b)`` on one batch."""
    linears = [i for i, m in enumerate(model) if isinstance(m, nn.Linear)][:-1]
    acts, pres = [], []
    h = x
    for i, m in enumerate(model):
        h = m(h)
        if i in linears:
            h.retain_grad()
            pres.append(h)
        elif i - 1 in linears:
            acts.append(h)
    nn.functional.cross_entropy(h, y).backward()
    model.zero_grad(set_to_none=True)
    return [a.detach().flatten() for a in acts], [p.grad.flatten() for p in pres]


def _pick_lr(ctx, data, spec, width, steps, advance) -> tuple[float, dict]:
    """The learning rate of ``LR_GRID`` with the lowest validation error after ``steps`` (ties: larger)."""
    label, act, scheme = spec
    scores = {}
    for lr in LR_GRID:
        model = _net(data.features, width, data.classes, act, scheme, ctx.seed)
        history = train(model, data, steps=steps, lr=lr, batch_size=10, generator=ctx.generator(40), evals=1,
                        on_step=advance)
        scores[lr] = history.final_val_error
    best = min(LR_GRID, key=lambda lr: (scores[lr], -lr))
    return best, scores


@register("glorot2010", "Glorot & Bengio 2010, Table 1: standard vs normalized init, five hidden layers",
          "Sigmoid, Tanh, Tanh N, Softsign, Softsign N on Shapeset-3×2 and a real data set; test errors beside "
          "the paper's, the layer Jacobian's mean singular value, activation and gradient histograms")
def run(ctx: Context) -> None:
    width, steps, search = (64, 400, 100) if ctx.quick else (1000, 4000, 500)
    datasets = ("shapeset", real_data(ctx.quick))
    total = len(datasets) * len(NETWORKS) * (steps + search * len(LR_GRID))
    results, rows = {}, []
    with ctx.steps(total, f"5 × {width} MLPs, SGD batch 10") as advance:
        for name in datasets:
            data = load(name, ctx.quick)
            paper_key = "Shapeset-3×2" if name == "shapeset" else "MNIST"
            results[data.name] = {}
            for spec in NETWORKS:
                label, act, scheme = spec
                lr, scores = _pick_lr(ctx, data, spec, width, search, advance)
                model = _net(data.features, width, data.classes, act, scheme, ctx.seed)
                jac = mean_jacobian_singular_value(model, data.x_train[:4])
                history = train(model, data, steps=steps, lr=lr, batch_size=10, generator=ctx.generator(41),
                                on_step=advance)
                results[data.name][label] = {"lr": lr, "lr_search_val_error": scores, "jacobian_mean_sv": jac,
                                             "history": history.to_dict(), "test_error": history.final_test_error}
                rows.append([data.name, label, history.final_test_error, PAPER[paper_key][label], lr, jac,
                             PAPER_JACOBIAN[scheme] if act == "tanh" else None])
    ctx.results.update(width=width, steps=steps, lr_search_steps=search, lr_grid=LR_GRID, batch=10,
                       datasets=results, paper=PAPER)
    ctx.table(f"test error % after {steps} SGD updates (batch 10; the paper: 5M updates); paper's MNIST column "
              "beside our real data set", ["data", "network", "test error %", "paper", "lr (validation)",
                                           "mean sv of J at init", "paper (tanh)"], rows)

    def draw(axes):
        for ax, name in zip(axes, results):
            for label, r in results[name].items():
                ax.plot(r["history"]["step"], r["history"]["test_error"], label=label)
            ax.set(title=name, xlabel="SGD update", ylabel="test error %")
        axes[0].legend()

    ctx.figure("glorot2010_curves.png", draw, size=(11, 4), ncols=2)
    _figures_6_7(ctx, width)
    ctx.note("The runs are far shorter than the paper's (thousands of updates, not 5 million) and the real "
             "data set is Fashion-MNIST or scikit-learn's digits, not MNIST: compare the ordering of the "
             "networks, not the absolute errors.")


def _figures_6_7(ctx: Context, width: int) -> None:
    """Per-layer histograms at init on Shapeset, standard vs normalized tanh (the paper's Figures 6–7)."""
    data = load("shapeset", ctx.quick)
    x, y = data.x_train[:1000], data.y_train[:1000]
    hists, spread = {}, {}
    for label, scheme in (("Tanh", "standard"), ("Tanh N", "xavier_uniform")):
        model = _net(data.features, width, data.classes, "tanh", scheme, ctx.seed)
        hists[label] = _histograms(model, x, y)
        spread[label] = {"activation_std": [float(a.std()) for a in hists[label][0]],
                         "gradient_std": [float(g.std()) for g in hists[label][1]]}
    ctx.results["figures_6_7"] = spread
    ctx.table("std of activations and back-propagated gradients per hidden layer at init (Shapeset, tanh)",
              ["network", *[f"act L{i}" for i in range(1, 6)], *[f"grad L{i}" for i in range(1, 6)]],
              [[label, *s["activation_std"], *s["gradient_std"]] for label, s in spread.items()])

    def draw(axes):
        for col, label in enumerate(hists):
            acts, grads = hists[label]
            for layer, (a, g) in enumerate(zip(acts, grads), start=1):
                axes[0, col].hist(a.numpy(), bins=80, range=(-1, 1), histtype="step", label=f"layer {layer}")
                bound = float(max(gr.abs().max() for gr in grads))
                axes[1, col].hist(g.numpy(), bins=80, range=(-bound, bound), histtype="step", label=f"layer {layer}")
            axes[0, col].set_title(f"{label}: activation values")
            axes[1, col].set_title(f"{label}: back-propagated gradients")
            axes[1, col].set_yscale("log")
        axes[0, 0].legend(fontsize=7)

    ctx.figure("glorot2010_histograms.png", draw, size=(11, 7), nrows=2, ncols=2)
    ctx.note("Histograms: with the standard init the back-propagated gradients shrink from the top layer "
             "down (Figure 7, top); with the normalized init they keep one spread in every layer.")
