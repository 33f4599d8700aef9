"""The seed's three levers, one at a time and together, on a deep network that does not train."""

from __future__ import annotations

import torch
from torch import nn

from ..init import init_model
from ..monitor._monitor import parse_clip
from ..probing import probe
from ._context import Context
from ._datasets import load, real_data
from ._nets import build_mlp, profile
from ._registry import register
from ._train import train

# label: (activation, init, mlp options, clip)
VARIANTS = {
    "baseline: sigmoid, N(0, 0.01)": ("sigmoid", "normal:0.01", {}, None),
    "+ Xavier (sigmoid's gain)": ("sigmoid", "xavier_uniform:gain", {}, None),
    "+ scaled sigmoid": ("scaled_sigmoid", "normal:0.01", {}, None),
    "+ Xavier + scaled sigmoid": ("scaled_sigmoid", "xavier_uniform:gain", {}, None),
    "+ residual": ("sigmoid", "normal:0.01", {"residual": True}, None),
    "+ BatchNorm": ("sigmoid", "normal:0.01", {"norm": "batch"}, None),
    "+ LayerNorm": ("sigmoid", "normal:0.01", {"norm": "layer"}, None),
    "+ clipping (norm 1)": ("sigmoid", "normal:0.01", {}, "norm:1.0"),
    "all together": ("scaled_sigmoid", "xavier_uniform:gain", {"residual": True, "norm": "layer"}, "norm:1.0"),
}


def _model(depth, width, data, activation, init, options, seed):
    gain = init.endswith(":gain")
    scheme = init.removesuffix(":gain")
    model = build_mlp(depth, width, activation, "torch_default" if gain else scheme, seed=seed,
                      in_features=data.features, out_features=data.classes, **options)
    if gain:  # Xavier scaled by the activation's computed forward gain 1/sqrt(E[φ(z)²])
        init_model(model, scheme, activation=activation, generator=torch.Generator().manual_seed(seed))
    return model


@register("levers", "The seed's three levers on a 50-layer sigmoid net with N(0, 0.01)",
          "a good init, a good activation, residual connections, normalization and clipping, one at a time "
          "and together: gradient moments at init and training curves")
def run(ctx: Context) -> None:
    data = load(real_data(ctx.quick), ctx.quick)
    depth, width, steps = (20, 32, 150) if ctx.quick else (50, 128, 2000)
    lr, batch = 0.05, 32
    results, rows, curves = {}, [], {}
    with ctx.steps(len(VARIANTS) * steps, f"{depth}-layer variants on {data.name}") as advance:
        for label, (activation, init, options, clip) in VARIANTS.items():
            model = _model(depth, width, data, activation, init, options, ctx.seed)
            report = probe(model, data.x_train[:512], target=data.y_train[:512], loss_fn=nn.CrossEntropyLoss())
            prof = profile(report)
            ratio = prof["bwd_var"][0] / prof["bwd_var"][-1]
            history = train(model, data, steps=steps, lr=lr, batch_size=batch, generator=ctx.generator(70),
                            clip=parse_clip(clip), on_step=advance)
            results[label] = {"init": prof, "grad_var_first_over_last": ratio, "history": history.to_dict()}
            curves[label] = history
            rows.append([label, ratio, min(prof["fwd_var"][:-1]), history.train_loss[-1], history.final_test_error])
    ctx.results.update(data=data.name, depth=depth, width=width, steps=steps, lr=lr, batch=batch, variants=results)
    ctx.table(f"{depth} Linear layers of width {width} on {data.name}, SGD lr {lr}, batch {batch}, {steps} steps",
              ["variant", "Var[∂ℓ/∂h] layer 1 / top at init", "smallest hidden Var[h]", "final train loss",
               "test error %"], rows)

    def draw(axes):
        for label in VARIANTS:
            bwd = results[label]["init"]["bwd_var"]
            axes[0].semilogy(range(1, len(bwd) + 1), bwd, label=label)
            axes[1].plot(curves[label].step, curves[label].train_loss, label=label)
        axes[0].set(xlabel="module with parameters, in forward order", ylabel="Var[∂ℓ/∂h] at init")
        axes[1].set(xlabel="step", ylabel="train loss")
        axes[1].legend(fontsize=7)

    ctx.figure("levers.png", draw, size=(12, 4.5), ncols=2)
