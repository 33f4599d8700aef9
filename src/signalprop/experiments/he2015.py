"""He et al. (2015): deep ReLU nets under Xavier, He and LSUV; the first-layer gradient shrinks by
``2^(−1/2)`` per layer under Xavier."""

from __future__ import annotations

from torch import nn

from ..probing import probe
from ._context import Context
from ._datasets import load, real_data
from ._nets import INIT_LABELS, build_mlp
from ._registry import register
from ._train import train

INITS = ("xavier_normal", "kaiming_normal", "lsuv")
DEPTHS = (22, 30)


def _steps_to(history, threshold: float) -> int | None:
    """First evaluation step whose test error is below ``threshold`` percent."""
    return next((s for s, e in zip(history.step, history.test_error) if e < threshold), None)


@register("he2015", "He et al. 2015: 22- and 30-layer ReLU nets under Xavier, He and LSUV",
          "He converges earlier; at 30 layers Xavier stalls, its first-layer gradient ≈ 2^(−L/2) of He's")
def run(ctx: Context) -> None:
    dataset = real_data(ctx.quick)
    data = load(dataset, ctx.quick)
    width, steps = (48, 300) if ctx.quick else (256, 3000)
    lr, batch = 0.01, 64
    results, rows, curves = {}, [], {}
    with ctx.steps(len(DEPTHS) * len(INITS) * steps, f"deep ReLU MLPs on {data.name}") as advance:
        for depth in DEPTHS:
            results[depth] = {}
            for init in INITS:
                model = build_mlp(depth, width, "relu", init, seed=ctx.seed, in_features=data.features,
                                  out_features=data.classes, lsuv_inputs=data.x_train[:512])
                report = probe(model, data.x_train[:512], target=data.y_train[:512], loss_fn=nn.CrossEntropyLoss())
                grad_first = next(p.grad_norm for p in report.params if p.name == "0.weight")
                history = train(model, data, steps=steps, lr=lr, batch_size=batch, generator=ctx.generator(50),
                                evals=20, on_step=advance)
                results[depth][init] = {"first_layer_grad_norm": grad_first, "history": history.to_dict(),
                                        "output_var": report.layers[-1].fwd_var}
                curves[(depth, init)] = history
            he = results[depth]["kaiming_normal"]["first_layer_grad_norm"]
            for init in INITS:
                r = results[depth][init]
                r["grad_ratio_to_he"] = r["first_layer_grad_norm"] / he
                h = curves[(depth, init)]
                rows.append([depth, INIT_LABELS[init], r["first_layer_grad_norm"], r["grad_ratio_to_he"],
                             2 ** (-depth / 2) if init == "xavier_normal" else None, r["output_var"],
                             _steps_to(h, 50.0), h.final_test_error])
    ctx.results.update(data=data.name, width=width, steps=steps, lr=lr, batch=batch, depths=results)
    ctx.table(f"ReLU MLPs of width {width} on {data.name}, SGD lr {lr}, batch {batch}, {steps} steps",
              ["depth", "init", "‖∂ℓ/∂W₁‖ at init", "ratio to He", "2^(−L/2)", "Var[output] at init",
               "first step with test error < 50%", "final test error %"], rows)

    def draw(axes):
        for ax, depth in zip(axes, DEPTHS):
            for init in INITS:
                h = curves[(depth, init)]
                ax.plot(h.step, h.train_loss, label=INIT_LABELS[init])
            ax.set(title=f"{depth} layers", xlabel="step", ylabel="train loss")
        axes[0].legend()

    ctx.figure("he2015.png", draw, size=(10, 4), ncols=2)
    ctx.note("Under Xavier (σ_w² = 1) every ReLU layer halves both the forward and the backward variance, "
             "so the first layer's gradient is 2^(−(L−1)/2) of He's for the same output gradient; the "
             "real loss's gradient at the output differs a little between the two, hence 'ratio to He'.")
