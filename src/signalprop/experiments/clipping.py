"""Gradient clipping on an exploding run: none, global norm, value and adaptive (AGC), plain and residual."""

from __future__ import annotations

from ..monitor._monitor import parse_clip
from ._context import Context
from ._datasets import load, real_data
from ._nets import build_mlp
from ._registry import register
from ._train import train

CLIPS = {"none": None, "norm 1.0": "norm:1.0", "value 0.01": "value:0.01", "AGC λ=0.01": "agc:0.01",
         "AGC λ=0.04": "agc:0.04", "AGC λ=0.16": "agc:0.16"}


@register("clipping", "Clipping tames an exploding run: none vs norm vs value vs AGC",
          "a deep ReLU net under He init at a high learning rate with momentum diverges unclipped; global-norm, "
          "value and adaptive clipping (λ grid) keep it finite; plain vs residual")
def run(ctx: Context) -> None:
    data = load(real_data(ctx.quick), ctx.quick)
    depth, width, steps = (12, 48, 150) if ctx.quick else (20, 256, 1500)
    lr, batch, momentum = 0.2, 32, 0.9
    results, rows, curves = {}, [], {}
    total = 2 * len(CLIPS) * steps
    with ctx.steps(total, f"{depth}-layer ReLU nets at lr {lr} on {data.name}") as advance:
        for residual in (False, True):
            arch = "residual" if residual else "plain"
            results[arch] = {}
            for label, clip in CLIPS.items():
                model = build_mlp(depth, width, "relu", "kaiming_normal", seed=ctx.seed, in_features=data.features,
                                  out_features=data.classes, residual=residual)
                history = train(model, data, steps=steps, lr=lr, batch_size=batch, momentum=momentum,
                                generator=ctx.generator(80), clip=parse_clip(clip), on_step=advance)
                results[arch][label] = history.to_dict()
                curves[(arch, label)] = history
                rows.append([arch, label, history.diverged_at, history.train_loss[-1], history.final_test_error])
    ctx.results.update(data=data.name, depth=depth, width=width, steps=steps, lr=lr, momentum=momentum, batch=batch,
                       runs=results)
    ctx.table(f"{depth}-layer ReLU MLPs (width {width}, He init) on {data.name}, SGD lr {lr}, momentum {momentum}, "
              f"batch {batch}, {steps} steps", ["network", "clipping", "non-finite loss at step", "final train loss",
                                                "test error %"], rows)

    def draw(axes):
        for ax, arch in zip(axes, ("plain", "residual")):
            for label in CLIPS:
                h = curves[(arch, label)]
                ax.semilogy(h.step, h.train_loss, label=label)
            ax.set(title=arch, xlabel="step", ylabel="train loss")
        axes[0].legend(fontsize=8)

    ctx.figure("clipping.png", draw, size=(10, 4), ncols=2)
    ctx.note("A run whose loss turns non-finite stops there; its row shows the step.")
