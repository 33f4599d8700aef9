"""Forward and backward variance through depth under every initialization, against the mean-field
prediction; unequal widths show Xavier's compromise."""

from __future__ import annotations

import math

import torch

from ..theory import predict
from ._context import Context
from ._nets import INIT_LABELS, build_mlp, probe_mlp, profile
from ._registry import register

ACTIVATIONS = ("tanh", "relu", "sigmoid", "scaled_sigmoid")
INITS = tuple(INIT_LABELS)
UNEQUAL_INITS = {"lecun_normal": "fan_in (LeCun)", "xavier_normal": "fan_avg (Xavier)"}


def _fan_out_normal(model):
    """``N(0, 1/fan_out)``: keeps the backward variance, the seed's ``n_s γ_s = 1``."""
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for m in model:
            if isinstance(m, torch.nn.Linear):
                m.weight.normal_(0.0, 1.0 / math.sqrt(m.out_features), generator=generator)
                m.bias.zero_()


def _bottom_over_top(values: list[float]) -> float:
    return values[0] / values[-1] if values[-1] > 0 else math.inf


@register("init-vs-depth", "Forward and backward variance through depth, for every initialization",
          "N(0, 0.01), standard U[±1/√n], PyTorch's default, Xavier, He and LSUV across tanh, relu, sigmoid "
          "and the scaled sigmoid, with the mean-field prediction; unequal widths for Xavier's compromise")
def run(ctx: Context) -> None:
    depth, width, batch = (10, 64, 128) if ctx.quick else (50, 256, 512)
    x = torch.randn(batch, width, generator=ctx.generator(1))
    runs: dict[str, dict[str, dict]] = {}
    rows = []
    with ctx.steps(len(ACTIVATIONS) * len(INITS), f"{depth}-layer, {width}-wide MLPs") as advance:
        for act in ACTIVATIONS:
            runs[act] = {}
            for init in INITS:
                model = build_mlp(depth, width, act, init, seed=ctx.seed)
                report = probe_mlp(model, x, ctx.seed, f"{act}, {init}")
                prof = profile(report)
                pred = report.prediction
                prof["predicted_fwd_var"] = list(pred.q)
                prof["predicted_bwd_var"] = list(pred.grad)
                runs[act][init] = prof
                # below float32's range (~1e-38) the measured variance underflows to 0: not compared
                comparable = [(m, p) for m, p in zip(prof["fwd_var"], pred.q) if p > 1e-30]
                worst = max((abs(m / p - 1) for m, p in comparable), default=None)
                rows.append([act, INIT_LABELS[init], prof["fwd_var"][0], prof["fwd_var"][-2],
                             _bottom_over_top(prof["bwd_var"]), pred.grad[0], worst])
                advance()
    ctx.results.update(depth=depth, width=width, batch=batch, runs=runs)
    ctx.table(f"{depth}-layer, {width}-wide MLP, x ~ N(0, 1), noise grad_output at the top",
              ["activation", "init", "Var[h] layer 1", f"Var[h] layer {depth - 1}", "Var[∂ℓ/∂h] layer 1 / top",
               "predicted", "worst |measured/predicted − 1| (fwd)"], rows)

    def draw(axes):
        for col, act in enumerate(ACTIVATIONS):
            for init in INITS:
                prof = runs[act][init]
                layers = range(1, depth + 1)
                for row, key in enumerate(("fwd_var", "bwd_var")):
                    line, = axes[row, col].semilogy(layers, prof[key], label=INIT_LABELS[init])
                    pred_key = "predicted_" + key
                    axes[row, col].semilogy(layers, prof[pred_key], "--", color=line.get_color(), lw=0.8)
            axes[0, col].set_title(act)
            axes[1, col].set_xlabel("layer")
        axes[0, 0].set_ylabel("Var[h] (forward)")
        axes[1, 0].set_ylabel("Var[∂ℓ/∂h] (backward)")
        axes[0, -1].legend(fontsize=7)

    ctx.figure("variance_vs_depth.png", draw, size=(16, 7), nrows=2, ncols=len(ACTIVATIONS))
    ctx.note("Dashed: the mean-field prediction from the weights actually drawn (signalprop.theory.predict).")
    _unequal_widths(ctx, depth, width, batch)


def _unequal_widths(ctx: Context, depth: int, width: int, batch: int) -> None:
    """Widths alternating ``w/2, 2w``: fan_in keeps the forward variance, fan_out the backward one, and
    Xavier's ``γ = 2/(n_{s−1} + n_s)`` keeps neither. Its per-layer factors ``2n_{s−1}/(n_{s−1} + n_s)``
    multiply to ``4ab/(a + b)² < 1`` over each ``a → b → a`` pair, so both variances decay geometrically
    (by 0.64 per pair for a 1:4 ratio): the seed's compromise is exact only for equal widths."""
    widths = [width] + [width // 2 if i % 2 == 0 else 2 * width for i in range(depth - 1)] + [width]
    x = torch.randn(batch, width, generator=ctx.generator(2))
    results, rows = {}, []
    variants = [*UNEQUAL_INITS, "fan_out"]
    for init in variants:
        model = build_mlp(depth, width, "linear", "lecun_normal" if init == "fan_out" else init,
                          seed=ctx.seed, widths=widths)
        if init == "fan_out":
            _fan_out_normal(model)
        report = probe_mlp(model, x, ctx.seed, init)
        prof = profile(report)
        sigma_w2 = {"lecun_normal": 1.0, "xavier_normal": "xavier",
                    "fan_out": [widths[i] / widths[i + 1] for i in range(depth)]}[init]
        pred = predict("linear", depth, sigma_w2=sigma_w2, widths=widths)
        prof["predicted_fwd_var"], prof["predicted_bwd_var"] = list(pred.q), list(pred.grad)
        results[init] = prof
        label = UNEQUAL_INITS.get(init, "fan_out")
        rows.append([label, min(prof["fwd_var"]), max(prof["fwd_var"]), min(pred.q), max(pred.q),
                     min(prof["bwd_var"]), max(prof["bwd_var"]), min(pred.grad), max(pred.grad)])
    ctx.results["unequal_widths"] = {"widths": widths, "runs": results}
    ctx.table(f"linear MLP, widths alternating {width // 2} / {2 * width}: min and max over layers",
              ["variance", "fwd min", "fwd max", "pred. min", "pred. max", "bwd min", "bwd max", "pred. min",
               "pred. max"], rows)

    def draw(axes):
        for init in variants:
            prof = results[init]
            for ax, key in zip(axes, ("fwd_var", "bwd_var")):
                line, = ax.semilogy(range(1, depth + 1), prof[key], label=UNEQUAL_INITS.get(init, "fan_out"))
                ax.semilogy(range(1, depth + 1), prof["predicted_" + key], "--", color=line.get_color(), lw=0.8)
        axes[0].set_title("forward Var[h]")
        axes[1].set_title("backward Var[∂ℓ/∂h]")
        for ax in axes:
            ax.set_xlabel("layer")
        axes[0].legend()

    ctx.figure("unequal_widths.png", draw, size=(10, 4), ncols=2)
