"""Gradient clipping: by total norm, by value, and adaptive (unit-wise, relative to the weights).

All three work on the device without a host synchronisation (except ``error_if_nonfinite=True``, which
must look at the norm). With ``report=True`` (always, for :func:`adaptive_clip_grad_`) they return a
:class:`Clipped` holding, as device tensors, the factor each parameter's gradient was scaled by and the
fraction of it that was touched.

``clip_grad_norm_`` and ``clip_grad_value_`` compute exactly what ``torch.nn.utils`` computes (the same
kernels in the same order, so the results are bit-identical).

Under FSDP2 (``fully_shard``: parameters and gradients are DTensors sharded over a 1-D device mesh) the
total norm is global: each rank sums ``‖g_r‖_p^p`` over its shards, one ``all_reduce`` adds them (``max``
for the ∞-norm), and every shard is scaled by the same factor; the norm comes back as an ordinary
tensor, equal on every rank. Under DDP the gradients are already whole and equal on every rank, so the
plain computation is the global one. Adaptive clipping needs whole units: FSDP2 shards dim 0, which keeps
every output row of a Linear or Conv weight on one rank; vectors (biases) are one unit, whose norms
take one ``all_reduce`` for all of them; units split across ranks (a ConvTranspose weight, whose output
channels are dim 1; a shard along another dim) raise ``ValueError``.

Under FSDP1 (``FullyShardedDataParallel``) each rank holds pieces of flattened parameters, plain tensors
that cannot say they are shards: pass the wrapped module itself (``clip_grad_norm_(model, 1.0)``), which
knows, and the total norm is global as under FSDP2. Its bare parameters are refused rather than clipped
by a per-rank norm. Adaptive clipping refuses FSDP1 parameters: flattening has lost their units.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ._select import Selector, as_selectors, matches
from .distributed import flat_shard_groups, is_flattened, local, shard_group

__all__ = ["Clipped", "adaptive_clip_grad_", "clip_grad_norm_", "clip_grad_value_"]

_FOREACH_DEVICES = ("cpu", "cuda", "xpu")

try:  # a private helper, stable since torch 2.0; the fallback groups by first appearance
    from torch.utils._foreach_utils import _group_tensors_by_device_and_dtype as _torch_grouping
except ImportError:  # pragma: no cover
    _torch_grouping = None


@dataclass(frozen=True)
class Clipped:
    """What a clip did, per parameter that had a gradient (in the order given).

    ``factor``: the smallest scale applied to any part of the gradient (1 = untouched; for value
    clipping, ``min(1, c/max|g|)``). ``fraction``: the fraction of the gradient scaled (norm clipping:
    1 or 0; value clipping: entries beyond ``±c``; adaptive: units). ``total_norm``: the pre-clip total
    norm (norm clipping only). All are device tensors; reading them is the caller's host sync.
    """

    parameters: list[Tensor]
    factor: Tensor
    fraction: Tensor
    total_norm: Tensor | None = None

    @property
    def clipped(self) -> Tensor:
        """Boolean mask of the parameters whose gradient was changed."""
        return self.factor < 1


def _parameters(parameters) -> list[Tensor]:
    if isinstance(parameters, nn.Module):
        return list(parameters.parameters())
    if isinstance(parameters, Tensor):
        return [parameters]
    return list(parameters)


def _with_grads(parameters) -> list[Tensor]:
    return [p for p in _parameters(parameters) if p.grad is not None]


def _flat_groups(parameters, params: list[Tensor]) -> dict[int, object]:
    """FSDP1's shard groups, which only the wrapping module knows (see :mod:`signalprop.distributed`)."""
    if isinstance(parameters, nn.Module):
        return flat_shard_groups(parameters)
    if any(is_flattened(p) for p in params):
        raise ValueError("these parameters are FullyShardedDataParallel (FSDP1) shards, which do not say how "
                         "they are sharded, so their total norm cannot be taken here; pass the FSDP-wrapped "
                         "module itself: clip_grad_norm_(model, max_norm)")
    return {}


def _groups(tensors: list[Tensor]) -> list[list[int]]:
    """Indices of ``tensors`` grouped by (device, dtype).

    The group order decides the summation order of the total norm, so torch's own grouping is used where
    it exists (its order is that of a hash map, not of first appearance); otherwise first appearance.
    """
    if _torch_grouping is not None and tensors:
        return [idx for _, (_, idx) in _torch_grouping([tensors], with_indices=True).items()]
    groups: dict[tuple, list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault((t.device, t.dtype), []).append(i)
    return list(groups.values())


def _use_foreach(tensors: list[Tensor], foreach: bool | None) -> bool:
    device = tensors[0].device
    if foreach is None:
        return device.type in _FOREACH_DEVICES and all(type(t) is Tensor for t in tensors)
    if foreach and device.type not in _FOREACH_DEVICES:
        raise RuntimeError(f"foreach=True was passed, but can't use the foreach API on {device.type} tensors")
    return foreach


def _grouped_norms(tensors: list[Tensor], norm_type: float, foreach: bool | None) -> list[tuple[int, Tensor]]:
    """``(index, p-norm)`` pairs in group order, one foreach kernel per (device, dtype) group."""
    out: list[tuple[int, Tensor]] = []
    for idx in _groups(tensors):
        group = [tensors[i] for i in idx]
        if _use_foreach(group, foreach):
            out.extend(zip(idx, torch._foreach_norm(group, norm_type)))
        else:
            out.extend((i, torch.linalg.vector_norm(t, norm_type)) for i, t in zip(idx, group))
    return out


def norms(tensors: list[Tensor], norm_type: float = 2.0, *, foreach: bool | None = None) -> list[Tensor]:
    """Each tensor's p-norm (0-d, on its device), in the order given."""
    return [n for _, n in sorted(_grouped_norms(tensors, norm_type, foreach), key=lambda pair: pair[0])]


def total_norm(tensors: Iterable[Tensor], norm_type: float = 2.0, *, foreach: bool | None = None) -> Tensor:
    """``‖(‖t₁‖_p, ‖t₂‖_p, …)‖_p``: the p-norm of all tensors as if concatenated into one vector (summed in
    group order, as torch does, so the result is bit-identical)."""
    tensors = list(tensors)
    if not tensors:
        return torch.tensor(0.0)
    first = tensors[0].device
    pieces = [n.to(first) for _, n in _grouped_norms(tensors, float(norm_type), foreach)]
    return torch.linalg.vector_norm(torch.stack(pieces), norm_type)


@torch.no_grad()
def clip_grad_norm_(
    parameters,
    max_norm: float,
    norm_type: float = 2.0,
    *,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
    report: bool = False,
) -> Tensor | Clipped:
    """Scale all gradients by ``min(1, max_norm / (‖g‖_p + 1e-6))``, ``‖g‖_p`` the total p-norm.

    ``parameters``: tensors, or a module (required for an FSDP1 model, whose shards only the module
    knows). Returns the pre-clip total norm (as ``torch.nn.utils.clip_grad_norm_`` does), or a
    :class:`Clipped` with ``report=True``. No host synchronisation unless ``error_if_nonfinite``.
    """
    every = _parameters(parameters)
    flat = _flat_groups(parameters, every)
    params = [p for p in every if p.grad is not None]
    max_norm, norm_type = float(max_norm), float(norm_type)
    grads = [p.grad for p in params]
    # decided from every parameter, not only those with a gradient here: an FSDP1 rank may hold an empty
    # piece (no gradient) of a sharded parameter, and every rank must join the same all_reduce
    group = _one_group(every, flat)
    if group is not None:
        grads = [local(g) for g in grads]
        norm = _sharded_total_norm(params, grads, norm_type, foreach, group, flat, every[0].device)
    else:
        norm = total_norm(grads, norm_type, foreach=foreach)
    if error_if_nonfinite and torch.logical_or(norm.isnan(), norm.isinf()):
        raise RuntimeError(f"the total norm of order {norm_type} of the gradients is non-finite, so it cannot "
                           "be clipped; pass error_if_nonfinite=False to scale by it anyway")
    if not grads:
        return Clipped([], torch.ones(0), torch.zeros(0), norm) if report else norm
    # multiplying by a coefficient clamped to 1 avoids a host-side `if coef < 1`
    coef = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
    for idx in _groups(grads):
        group = [grads[i] for i in idx]
        scale = coef.to(group[0].device)
        if _use_foreach(group, foreach):
            torch._foreach_mul_(group, scale)
        else:
            for g in group:
                g.mul_(scale)
    if not report:
        return norm
    factor = coef.expand(len(grads)).clone()
    return Clipped(params, factor, (factor < 1).to(factor.dtype), norm)


def _one_group(params: list[Tensor], flat: dict[int, object] | None = None):
    """The one process group the sharded ``params`` are sharded over, or ``None`` when none is sharded."""
    groups = {shard_group(p, flat) for p in params} - {None}
    if len(groups) > 1:
        raise ValueError("parameters sharded over different process groups cannot be clipped together")
    return groups.pop() if groups else None


def _sharded_total_norm(params: list[Tensor], grads: list[Tensor], norm_type: float, foreach, group,
                        flat: dict[int, object], device: torch.device) -> Tensor:
    """The global p-norm of gradients some of which are shards: ``(all_reduce(Σ‖shard‖^p) + Σ‖whole‖^p)^(1/p)``."""
    sharded = [g for p, g in zip(params, grads) if shard_group(p, flat) is not None]
    whole = [g for p, g in zip(params, grads) if shard_group(p, flat) is None]
    # a rank may hold no sharded gradient at all; its zero must still be on the collective's device
    part = total_norm(sharded, norm_type, foreach=foreach).float().to(device)
    rest = total_norm(whole, norm_type, foreach=foreach).float().to(device)
    if norm_type == float("inf"):
        torch.distributed.all_reduce(part, op=torch.distributed.ReduceOp.MAX, group=group)
        return torch.maximum(part, rest)
    part = part**norm_type
    torch.distributed.all_reduce(part, group=group)
    return (part + rest**norm_type) ** (1.0 / norm_type)


@torch.no_grad()
def clip_grad_value_(parameters, clip_value: float, *, foreach: bool | None = None,
                     report: bool = False) -> Clipped | None:
    """Clamp every gradient entry to ``[−clip_value, clip_value]``.

    Returns ``None`` (as ``torch.nn.utils.clip_grad_value_`` does), or a :class:`Clipped` with
    ``report=True`` (one extra read of each gradient, before clamping).
    """
    params = _with_grads(parameters)
    clip_value = float(clip_value)
    grads = [local(p.grad) for p in params]  # elementwise: each shard on its own
    if report:
        peak = torch.stack([g.detach().abs().amax().float().to(grads[0].device) for g in grads]) if grads \
            else torch.zeros(0)
        fraction = torch.stack([(g.detach().abs() > clip_value).float().mean().to(peak.device) for g in grads]) \
            if grads else torch.zeros(0)
        factor = torch.clamp(clip_value / peak, max=1.0)
    for idx in _groups(grads):
        group = [grads[i] for i in idx]
        if _use_foreach(group, foreach):
            torch._foreach_clamp_min_(group, -clip_value)
            torch._foreach_clamp_max_(group, clip_value)
        else:
            for g in group:
                g.clamp_(min=-clip_value, max=clip_value)
    return Clipped(params, factor, fraction) if report else None


def unit_norms(tensor: Tensor, *, layout: str = "out_first", groups: int = 1) -> Tensor:
    """Per-output-unit L2 norms, shaped to broadcast against ``tensor``.

    ``out_first`` (Linear ``(out, in)``, Conv ``(out, in/g, k…)``, anything ≥ 2-D by default): the norm of
    each ``tensor[i]``. ``in_first`` (ConvTranspose ``(in, out/g, k…)``): output channel ``j`` of group
    ``k`` is ``tensor[k·in/g:(k+1)·in/g, j]``. Scalars and vectors (biases, gains) are one unit.
    """
    if tensor.dim() <= 1:
        return torch.linalg.vector_norm(tensor)
    if layout == "out_first":
        return torch.linalg.vector_norm(tensor, dim=tuple(range(1, tensor.dim())), keepdim=True)
    if layout != "in_first":
        raise ValueError(f"layout must be 'out_first' or 'in_first', got {layout!r}")
    shape = tensor.shape
    grouped = tensor.reshape(groups, shape[0] // groups, *shape[1:])
    dims = (1, *range(3, grouped.dim()))
    norms = torch.linalg.vector_norm(grouped, dim=dims, keepdim=True)  # (groups, 1, out/g, 1, …)
    return norms.expand_as(grouped).reshape(shape)


def _sharded_vector_norms(targets: list[tuple[Tensor, str, int]]) -> dict[int, tuple[Tensor, Tensor]]:
    """Whole-vector norms ``(‖w‖, ‖g‖)`` of sharded vectors (one unit each), from one ``all_reduce`` of
    their shards' squared norms; checks that every sharded matrix keeps its units whole on each rank."""
    vectors = []
    for p, layout, _ in targets:
        if shard_group(p) is None:
            continue
        if p.dim() <= 1:
            vectors.append(p)
            continue
        dims = {q.dim for q in p.placements if q.is_shard()}
        if layout != "out_first" or dims != {0}:
            raise ValueError(f"adaptive clipping needs whole units on each rank, but a {tuple(p.shape)} "
                             f"{'in-first (ConvTranspose) ' if layout != 'out_first' else ''}weight is sharded along "
                             f"dim(s) {sorted(dims)}, which splits its output units across ranks")
    if not vectors:
        return {}
    squares = torch.stack([torch.linalg.vector_norm(local(t)).float() ** 2
                           for p in vectors for t in (p.detach(), p.grad.detach())])
    torch.distributed.all_reduce(squares, group=_one_group(vectors))
    roots = squares.sqrt()
    return {id(p): (roots[2 * i], roots[2 * i + 1]) for i, p in enumerate(vectors)}


def _agc_targets(module_or_parameters, exclude) -> list[tuple[Tensor, str, int]]:
    """``(parameter, layout, groups)`` for each parameter with a gradient."""
    if not isinstance(module_or_parameters, nn.Module):
        module_or_parameters = _parameters(module_or_parameters)  # an iterator is read once
    if any(is_flattened(p) for p in _parameters(module_or_parameters)):
        raise ValueError("adaptive clipping needs each weight's output units, but FullyShardedDataParallel "
                         "(FSDP1) has flattened these parameters into 1-D pieces; use FSDP2 (fully_shard), "
                         "which keeps whole rows on each rank, or DDP")
    if not isinstance(module_or_parameters, nn.Module):
        if exclude is not None:
            raise ValueError("exclude= needs a module (parameters carry no names)")
        return [(p, "out_first", 1) for p in _with_grads(module_or_parameters)]
    selectors = as_selectors(exclude, "exclude")
    targets, seen = [], set()
    for name, module in module_or_parameters.named_modules():
        if selectors is not None and matches(selectors, name, module):
            seen.update(id(p) for p in module.parameters())  # excluded, with everything inside it
            continue
        for pname, p in module.named_parameters(recurse=False):
            if id(p) in seen or p.grad is None:
                continue
            seen.add(id(p))
            transposed = isinstance(module, nn.modules.conv._ConvTransposeNd) and pname == "weight"
            targets.append((p, "in_first" if transposed else "out_first", module.groups if transposed else 1))
    return targets


@torch.no_grad()
def adaptive_clip_grad_(module_or_parameters, clipping: float = 0.01, eps: float = 1e-3, *,
                        exclude: Selector | list[Selector] | None = None) -> Clipped:
    """Adaptive gradient clipping (Brock et al. 2021, NFNets), unit-wise.

    For each output unit ``i`` of each parameter: if ``‖G_i‖ / max(‖W_i‖, ε) > λ``, set
    ``G_i ← λ·max(‖W_i‖, ε)/‖G_i‖ · G_i``. A unit is an output row or output filter in PyTorch's layout:
    out-first for Linear and Conv, in-first for ConvTranspose (which is why a module is accepted: a bare
    tensor cannot tell its layout, and out-first is then assumed); vectors are one unit. ``exclude`` (name
    globs, module types or predicates, needs a module) skips modules, e.g. the final classifier, as the
    paper does.
    """
    if clipping <= 0 or eps < 0:
        raise ValueError(f"need clipping > 0 and eps >= 0, got clipping={clipping}, eps={eps}")
    targets = _agc_targets(module_or_parameters, exclude)
    vector_norms = _sharded_vector_norms(targets)
    factors, fractions = [], []
    for p, layout, groups in targets:
        if id(p) in vector_norms:
            weight_norm, grad_norm = vector_norms[id(p)]
        else:
            weight_norm = unit_norms(local(p.detach()), layout=layout, groups=groups)
            grad_norm = unit_norms(local(p.grad.detach()), layout=layout, groups=groups)
        limit = weight_norm.clamp(min=eps).mul_(clipping)
        norm = grad_norm
        over = norm > limit
        scale = torch.where(over, limit / norm.clamp(min=1e-6), torch.ones_like(norm))
        local(p.grad).mul_(scale)
        factors.append(scale.amin().float())
        fractions.append(over.float().mean())
    params = [p for p, _, _ in targets]
    if not params:
        return Clipped([], torch.ones(0), torch.zeros(0))
    device = params[0].device
    return Clipped(params, torch.stack([f.to(device) for f in factors]),
                   torch.stack([f.to(device) for f in fractions]))
