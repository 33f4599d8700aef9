"""``probe``: one forward and one backward pass that measure every layer's signal, leaving the model as it was."""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import contextmanager

import torch
from torch import nn

from .. import distributed as _dist
from .._moments import population_mean_std
from .._select import Selector
from ._capture import Capture, select_modules, tensor_leaves
from ._overlay import plain_mlp_spec
from ._report import ParamRow, ProbeReport, Row

__all__ = ["probe"]


@contextmanager
def preserved(model: nn.Module):
    """Restore train/eval modes, ``.grad`` (including ``None``) and buffers (e.g. BatchNorm's running
    statistics) on exit, also on exceptions. Parameters are not copied: the probe never writes them."""
    modes = [(m, m.training) for m in model.modules()]
    params = [p for p in model.parameters()]
    grads = [p.grad for p in params]
    requires = [p.requires_grad for p in params]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    for p in params:
        p.grad = None
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training
        for p, g, r in zip(params, grads, requires):
            p.grad = g
            p.requires_grad_(r)
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)


def _as_inputs(inputs, model: nn.Module) -> tuple:
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    if any(p.requires_grad for p in model.parameters()):
        return args
    # a frozen model: floating inputs get requires_grad (on a new alias, not the user's tensor) so the
    # backward pass still reaches every layer
    return tuple(a.detach().requires_grad_(True) if isinstance(a, torch.Tensor) and a.dtype.is_floating_point else a
                 for a in args)


def _backward(output, target, loss_fn, grad_output, generator) -> float | None:
    if loss_fn is not None:
        if target is None:
            raise ValueError("loss_fn needs a target")
        loss = loss_fn(output, target)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError("loss_fn must return a scalar tensor")
        loss.backward()
        return float(loss.detach())
    if target is not None:
        raise ValueError("target needs a loss_fn")
    leaves = [t for _, t in tensor_leaves(output) if t.dtype.is_floating_point and t.requires_grad]
    if not leaves:
        raise ValueError("the model's output does not require grad: nothing to back-propagate")
    if isinstance(grad_output, torch.Tensor):
        grads = [grad_output.to(leaves[0].device)]
        if len(leaves) != 1 or grads[0].shape != leaves[0].shape:
            raise ValueError("grad_output must match the shape of the model's single output")
    elif grad_output == "normal":
        grads = [torch.randn(t.shape, generator=generator, dtype=torch.float32, device=generator.device)
                 .to(device=t.device, dtype=t.dtype) for t in leaves]
    else:
        raise ValueError(f"grad_output must be 'normal' or a tensor, got {grad_output!r}")
    torch.autograd.backward(leaves, grads)
    return None


def probe(
    model: nn.Module,
    inputs,
    *,
    target=None,
    loss_fn: Callable | None = None,
    grad_output: str | torch.Tensor = "normal",
    layers: Selector | list[Selector] | None = None,
    generator: torch.Generator | None = None,
    label: str | None = None,
    distributed="auto",
    process_group=None,
) -> ProbeReport:
    """Measure the forward and backward signal of every selected layer in one forward and one backward pass.

    For each call of a selected module (default: every module with parameters of its own and every
    activation module) and each floating tensor it returns, the report holds the mean and variance of the
    output ``h`` over batch and features, the smallest and largest per-unit variance, the fraction of
    units holding NaN/Inf, dead units, saturation, and the same for ``∂ℓ/∂h``; plus each parameter's std
    and gradient norm.

    Without ``loss_fn`` the backward pass starts from a seeded standard-normal ``grad_output`` on every
    floating output, so the top layer's backward variance is 1 by construction and the others read as
    gain relative to it. With ``target`` and ``loss_fn`` it back-propagates the real loss.

    The model is left exactly as it was: parameters, ``.grad`` (``None`` included), ``requires_grad``,
    train/eval modes and buffers are restored and every hook is removed, also when forward or loss raises.

    Args:
        model: any ``nn.Module``.
        inputs: a tensor, or a tuple of positional arguments for ``model``.
        target, loss_fn: back-propagate ``loss_fn(model(inputs), target)`` instead of noise.
        grad_output: ``"normal"`` or a tensor matching the output.
        layers: module types, name globs or ``predicate(name, module)`` choosing the rows.
        generator: generator for the noise (default: a new one seeded 0, so repeated probes agree).
        label: a name for this report in plots and comparisons.
        distributed: ``"auto"`` merges the layer rows across ranks when ``torch.distributed`` runs more
            than one (every rank must then call ``probe``, each with its part of the batch: the rows are
            the global batch's moments, merged exactly from per-unit means, variances and counts; with a
            loss, ``∂ℓ/∂h`` is that of the mean of the ranks' losses, each rank's divided by their number);
            ``False`` keeps this rank's own. Parameter rows are this rank's (its shards under FSDP2).
        process_group: the group to merge over (default: the world).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    modules = select_modules(model, layers)
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    args = _as_inputs(inputs, model)
    with preserved(model):
        with Capture(modules) as capture:
            output = model(*args)
            loss = _backward(output, target, loss_fn, grad_output, generator)
        merge = _dist.active(distributed, process_group)
        # with a loss, ∂ℓ/∂h is that of the mean of the ranks' losses (what DDP's averaged gradients descend)
        scale = 1.0 / _dist.world_size(process_group) if merge and loss_fn is not None else 1.0
        rows = [Row(**r) for r in capture.collect(merge=merge, group=process_group, grad_scale=scale)]
        params = _param_rows(model)
    spec = plain_mlp_spec(model, args, params)
    return ProbeReport(rows, params, label=label or type(model).__name__, mlp_spec=spec, loss=loss,
                       grad_source="loss" if loss_fn is not None else "normal")


def _param_rows(model: nn.Module) -> list[ParamRow]:
    named = [(n, p) for n, p in model.named_parameters() if p.numel() > 0]
    if not named:
        return []
    device = named[0][1].device
    stats = []
    for _, p in named:
        mean_std = population_mean_std(p)
        # in the gradient's dtype (a dtype= argument copies the tensor); a float32 norm reads 0 only when
        # every entry is below ~1e-19, i.e. when the gradient has vanished anyway
        grad = (torch.linalg.vector_norm(p.grad.detach()).double() if p.grad is not None
                else torch.full((1,), math.nan, dtype=torch.float64, device=p.device))
        stats.append(torch.cat([mean_std, grad.reshape(1)]).to(device))
    values = torch.stack(stats).tolist()  # one host transfer
    return [ParamRow(n, tuple(p.shape), *v) for (n, p), v in zip(named, values)]
