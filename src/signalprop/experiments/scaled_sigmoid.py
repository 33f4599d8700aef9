"""Sigmoid's β = 1/2 against the scaled sigmoid 4·sigmoid(x) − 2 and tanh: moments at init and training."""

from __future__ import annotations

from torch import nn

from ..probing import probe
from ._context import Context
from ._datasets import load, real_data
from ._nets import build_mlp, profile
from ._registry import register
from ._train import train

ACTIVATIONS = ("sigmoid", "scaled_sigmoid", "tanh")


@register("scaled-sigmoid", "Sigmoid vs the scaled sigmoid 4·sigmoid(x) − 2 vs tanh, under Xavier",
          "the mean of sigmoid's outputs sits at 1/2 and its gradients vanish with depth; the scaled "
          "sigmoid (= 2·tanh(x/2)) has α = 1, β = 0, keeps them and trains")
def run(ctx: Context) -> None:
    dataset = real_data(ctx.quick)
    data = load(dataset, ctx.quick)
    depth, width, steps = (6, 64, 400) if ctx.quick else (10, 256, 4000)
    lr, batch = 0.05, 32
    results, rows, curves = {}, [], {}
    with ctx.steps(steps * len(ACTIVATIONS), f"{depth}-layer MLPs on {data.name}") as advance:
        for act in ACTIVATIONS:
            model = build_mlp(depth, width, act, "xavier_uniform", seed=ctx.seed, in_features=data.features,
                              out_features=data.classes)
            report = probe(model, data.x_train[:512], target=data.y_train[:512], loss_fn=nn.CrossEntropyLoss())
            activations = [r for r in report.rows if r.role == "activation"]
            prof = profile(report)
            history = train(model, data, steps=steps, lr=lr, batch_size=batch, generator=ctx.generator(30),
                            on_step=advance)
            grad_ratio = prof["bwd_var"][0] / prof["bwd_var"][-1]
            results[act] = {"activation_means": [r.fwd_mean for r in activations], "init": prof,
                            "grad_var_first_over_last": grad_ratio, "history": history.to_dict()}
            curves[act] = history
            rows.append([act, activations[0].fwd_mean, activations[-1].fwd_mean, grad_ratio,
                         history.train_loss[-1], history.final_test_error])
    ctx.results.update(data=data.name, depth=depth, width=width, steps=steps, lr=lr, batch=batch,
                       activations=results)
    ctx.table(f"{depth}-layer, {width}-wide MLP on {data.name}, Xavier uniform, SGD lr {lr}, batch {batch}, "
              f"{steps} steps", ["activation", "E[φ] first hidden", "E[φ] last hidden",
                                 "Var[∂ℓ/∂h] layer 1 / top (real loss)", "final train loss", "test error %"], rows)

    def draw(axes):
        for act in ACTIVATIONS:
            axes[0].semilogy(range(1, depth + 1), results[act]["init"]["bwd_var"], label=act)
            h = curves[act]
            axes[1].plot(h.step, h.test_error, label=act)
        axes[0].set(xlabel="layer", ylabel="Var[∂ℓ/∂h] at init")
        axes[1].set(xlabel="step", ylabel="test error %")
        axes[0].legend()

    ctx.figure("scaled_sigmoid.png", draw, size=(10, 4), ncols=2)
