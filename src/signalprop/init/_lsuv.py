"""Layer-sequential unit-variance initialization (Mishkin & Matas 2016), fitted during one forward pass.

Each fitted layer computes ``y = W x + b`` (Linear, Conv, ConvTranspose; for MultiheadAttention the
output projection's weight plays ``W``). Scaling ``W`` by ``s`` scales the input-dependent part of
every output unit by ``s``, so with ``x`` fixed the layer alone can be refitted:

    W ← s·W,  s = sqrt(target / Var[y])                         (all units together)
    W_u ← s_u·W_u,  s_u = sqrt(target / Var[y_u])               (per channel)
    b ← s·(b − E[y_u])                                          (mean correction, through the bias)

A forward hook on each fitted layer does this when the layer is first called: it refits the layer on
the input it was given, repeating ``y = layer(x)`` (one layer's work) until ``|Var[y] − target| <
tol·target``, and hands the refitted output downstream. The layers are thus fitted in the order the
forward pass calls them (not the order they were registered), each on the output of the already fitted
layers before it, in one pass of the model; a second pass measures the result.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .._select import Selector, as_selectors, matches
from .._table import format_table
from ..probing._capture import tensor_leaves
from ..probing._stats import unit_dim
from ._model import init_model

__all__ = ["LSUVLayer", "LSUVReport", "lsuv_"]

_FITTABLE = (nn.Linear, nn.modules.conv._ConvNd, nn.MultiheadAttention)


@dataclass(frozen=True)
class LSUVLayer:
    """One fitted layer: output variance before and after, the rescalings it took, whether it converged."""

    name: str
    kind: str
    var_before: float
    var_after: float
    mean_after: float
    iterations: int
    converged: bool


@dataclass(frozen=True)
class LSUVReport:
    """Per layer in call order; ``forward_passes`` of the whole model and ``layer_forwards``: executions of
    fitted layers, counting both passes and every refit."""

    layers: list[LSUVLayer]
    target_var: float
    tol: float
    forward_passes: int
    layer_forwards: int
    not_called: list[str]

    @property
    def not_converged(self) -> list[str]:
        return [row.name for row in self.layers if not row.converged]

    def table(self) -> str:
        rows = [[r.name, r.kind, f"{r.var_before:.4g}", f"{r.var_after:.4g}", f"{r.mean_after:.3g}",
                 str(r.iterations), "yes" if r.converged else "NO"] for r in self.layers]
        text = format_table(["layer", "kind", "Var before", "Var after", "mean after", "rescalings", "converged"],
                            rows, "llrrrrl")
        return (f"{text}\n{len(self.layers)} layers to Var = {self.target_var:g} ± {self.tol:g}·target in "
                f"{self.forward_passes} forward passes ({self.layer_forwards} layer forwards)")

    def to_dict(self) -> dict:
        return {"layers": [asdict(r) for r in self.layers], "target_var": self.target_var, "tol": self.tol,
                "forward_passes": self.forward_passes, "layer_forwards": self.layer_forwards,
                "not_called": self.not_called}


def _scaled_weight(module: nn.Module) -> torch.Tensor:
    return module.out_proj.weight if isinstance(module, nn.MultiheadAttention) else module.weight


def _bias(module: nn.Module) -> torch.Tensor | None:
    return module.out_proj.bias if isinstance(module, nn.MultiheadAttention) else module.bias


def _scale_units_(module: nn.Module, scale: torch.Tensor) -> None:
    """Multiply output unit ``u``'s weights by ``scale[u]`` (a scalar scales all)."""
    w = _scaled_weight(module)
    if scale.dim() == 0:
        w.mul_(scale.to(w.dtype))
        return
    scale = scale.to(w.dtype)
    if isinstance(module, nn.modules.conv._ConvTransposeNd):  # (in, out/g, k…): output channels on dim 1
        g = module.groups
        view = w.view(g, w.shape[0] // g, w.shape[1], *w.shape[2:])
        view.mul_(scale.view(g, 1, w.shape[1], *[1] * (w.dim() - 2)))
    else:
        w.mul_(scale.view(-1, *[1] * (w.dim() - 1)))


def _main_output(output) -> torch.Tensor:
    return next(t for _, t in tensor_leaves(output) if t.dtype.is_floating_point)


@contextmanager
def _no_fused_attention():
    """Fused attention fast paths skip the submodule calls the hooks rely on: off for the duration."""
    backend = getattr(torch.backends, "mha", None)
    if backend is None or not hasattr(backend, "set_fastpath_enabled"):
        yield
        return
    before = backend.get_fastpath_enabled()
    backend.set_fastpath_enabled(False)
    try:
        yield
    finally:
        backend.set_fastpath_enabled(before)


class _Fitter:
    def __init__(self, target_var, tol, max_iter, correct_mean, per_channel):
        self.target_var, self.tol, self.max_iter = target_var, tol, max_iter
        self.correct_mean, self.per_channel = correct_mean, per_channel
        self.fitted: dict[int, dict] = {}
        self.order: list[int] = []
        self.layer_forwards = 0
        self.refitting = False

    def moments(self, module, y: torch.Tensor):
        """Overall (mean, var) and per-unit (means, vars) of ``y``, in float64."""
        y = y.detach().double()
        dim = unit_dim(module, y) % y.dim() if y.dim() > 1 else 0
        dims = [d for d in range(y.dim()) if d != dim] or [0]
        unit_mean = y.mean(dim=dims)
        unit_var = y.var(dim=dims, unbiased=False) if y.dim() > 1 else torch.zeros_like(unit_mean)
        return y.mean(), y.var(unbiased=False), unit_mean, unit_var

    def hook(self, index: int, name: str):
        def fit(module, args, kwargs, output):
            if self.refitting:
                return None
            self.layer_forwards += 1
            if index in self.fitted:
                return None  # a module called again: fitted on its first call
            self.order.append(index)
            y = _main_output(output)
            var_before = float(y.detach().double().var(unbiased=False))
            iterations, converged = 0, False
            while True:
                mean, var, unit_mean, unit_var = self.moments(module, y)
                check = unit_var.mean() if self.correct_mean else var
                if self.per_channel:
                    live = unit_var > 0
                    converged = bool(live.any()) and bool(
                        ((unit_var[live] - self.target_var).abs() < self.tol * self.target_var).all())
                else:
                    converged = bool((check - self.target_var).abs() < self.tol * self.target_var)
                if self.correct_mean and converged:
                    converged = bool(unit_mean.abs().max() < self.tol * math.sqrt(self.target_var))
                if converged or iterations == self.max_iter or not torch.isfinite(check) or check <= 0:
                    break
                if self.per_channel:
                    scale = torch.where(unit_var > 0, (self.target_var / unit_var).sqrt(), torch.ones_like(unit_var))
                else:
                    scale = (self.target_var / check).sqrt()
                _scale_units_(module, scale)
                bias = _bias(module)
                if self.correct_mean and bias is not None:
                    bias.copy_((scale * (bias.double() - unit_mean)).to(bias.dtype))
                iterations += 1
                self.refitting = True
                try:
                    output = module(*args, **kwargs)
                finally:
                    self.refitting = False
                self.layer_forwards += 1
                y = _main_output(output)
            self.fitted[index] = {"name": name, "kind": type(module).__name__, "var_before": var_before,
                                  "iterations": iterations, "converged": converged}
            return output

        return fit


def lsuv_(
    model: nn.Module,
    inputs,
    *,
    target_var: float = 1.0,
    tol: float = 0.02,
    max_iter: int = 20,
    orthogonal: bool = True,
    correct_mean: bool = False,
    per_channel: bool = False,
    layers: Selector | list[Selector] | None = None,
    generator: torch.Generator | None = None,
) -> LSUVReport:
    """Layer-sequential unit-variance init: every Linear/Conv/ConvTranspose/MultiheadAttention output gets
    variance ``target_var`` (within ``tol·target_var``) on ``inputs``, layers fitted in forward call order.

    Args:
        model: any module; fitted layers are chosen by ``layers`` (types, name globs, predicates; default
            the kinds above). Normalization layers are never fitted.
        inputs: a tensor, or a tuple of positional arguments for ``model`` (one representative batch).
        target_var, tol: the target output variance and the relative tolerance.
        max_iter: rescalings per layer at most (a layer that needs more is reported and warned about).
        orthogonal: first initialize the model with ``init_model(model, "orthogonal", generator=...)``
            (biases 0), as the paper does.
        correct_mean: also set each output unit's mean to 0 through the bias.
        per_channel: fit each output unit (channel) to the target, not the layer as a whole.
        generator: for the orthogonal pre-init.

    Atomic: on any error the parameters and buffers are restored. The model's train/eval modes are
    restored; it runs in eval mode (no dropout, no running-statistics update) with gradients off.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not (target_var > 0 and math.isfinite(target_var)):
        raise ValueError(f"target_var must be a positive number, got {target_var}")
    if not (0 < tol < 1):
        raise ValueError(f"tol must be in (0, 1), got {tol}")
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    selectors = as_selectors(layers, "layers")
    # attention is fitted as one unit through its output projection, which it applies without calling it
    inside_attention = {id(m.out_proj) for m in model.modules() if isinstance(m, nn.MultiheadAttention)}
    chosen = [(name or type(m).__name__, m) for name, m in model.named_modules() if id(m) not in inside_attention
              and (isinstance(m, _FITTABLE) if selectors is None else matches(selectors, name, m))]
    for name, m in chosen:
        if not isinstance(m, _FITTABLE):
            raise ValueError(f"layer {name} ({type(m).__name__}) cannot be fitted: LSUV scales the weight of "
                             "Linear, Conv, ConvTranspose and MultiheadAttention layers")
    if not chosen:
        raise ValueError("the model has no Linear, Conv, ConvTranspose or MultiheadAttention layer to fit")
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    saved = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
    modes = [(m, m.training) for m in model.modules()]
    fitter = _Fitter(target_var, tol, max_iter, correct_mean, per_channel)
    handles = []
    try:
        if orthogonal:
            init_model(model, "orthogonal", "zeros", generator=generator, measure=False)
        model.eval()
        for index, (name, m) in enumerate(chosen):
            handles.append(m.register_forward_hook(fitter.hook(index, name), with_kwargs=True))
        with torch.no_grad(), _no_fused_attention():
            model(*args)
            for h in handles:
                h.remove()
            handles.clear()
            after = _measure(model, args, chosen, fitter)
    except BaseException:
        with torch.no_grad():
            for k, v in model.state_dict(keep_vars=True).items():
                v.copy_(saved[k])
        raise
    finally:
        for h in handles:
            h.remove()
        for m, training in modes:
            m.training = training
    rows = []
    for index in fitter.order:
        info = fitter.fitted[index]
        mean, var = after[index]
        rows.append(LSUVLayer(info["name"], info["kind"], info["var_before"], var, mean, info["iterations"],
                              info["converged"]))
    not_called = [name for i, (name, _) in enumerate(chosen) if i not in fitter.fitted]
    report = LSUVReport(rows, target_var, tol, 2, fitter.layer_forwards, not_called)
    if report.not_converged:
        warnings.warn(f"LSUV: {len(report.not_converged)} layer(s) did not reach Var = {target_var:g} within "
                      f"{max_iter} rescalings: {', '.join(report.not_converged)}", RuntimeWarning, stacklevel=2)
    if not_called:
        warnings.warn(f"LSUV: the forward pass never called {', '.join(not_called)}; left as initialized",
                      RuntimeWarning, stacklevel=2)
    return report


def _measure(model: nn.Module, args: tuple, chosen, fitter: _Fitter) -> dict[int, tuple[float, float]]:
    """The second pass: each fitted layer's output mean and variance on its first call."""
    seen: dict[int, tuple[float, float]] = {}

    def hook_for(index):
        def hook(module, inputs, output):
            fitter.layer_forwards += 1
            if index not in seen:
                y = _main_output(output).detach().double()
                seen[index] = (float(y.mean()), float(y.var(unbiased=False)))

        return hook

    handles = [m.register_forward_hook(hook_for(i)) for i, (_, m) in enumerate(chosen) if i in fitter.fitted]
    try:
        model(*args)
    finally:
        for h in handles:
            h.remove()
    return seen
