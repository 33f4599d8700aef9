"""``torch.distributed`` support: which process is which, the one collective that merges statistics
across ranks, DTensor shards, and keeping weights identical on every rank.

Statistics are merged exactly, from sums and counts: for parts ``r`` with ``n_r`` values, mean ``m_r`` and
variance ``v_r``, the whole has

    N = Σ n_r,    m = Σ n_r m_r / N,    v = Σ n_r (v_r + (m_r − m)²) / N

(Chan, Golub & LeVeque 1979), which is what summing ``Σx``, ``Σx²`` and ``n`` over ranks gives too. Norms
of sharded tensors combine as ``‖x‖ = sqrt(Σ_r ‖x_r‖²)`` (``max`` for the ∞-norm); norms of replicated
tensors (DDP, whose gradients are already all-reduced) are taken from one rank.

Two kinds of shard are recognised. FSDP2 (``fully_shard``) parameters are DTensors and say how they are
sharded. FSDP1 (``FullyShardedDataParallel``) parameters are plain tensors holding each rank's piece of a
flattened parameter; only the wrapping module knows which are sharded and over which group, so functions
that must know take the module (:func:`flat_shard_groups`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["Merge", "active", "broadcast_parameters_", "clean_name", "flat_shard_groups", "gather_rows",
           "is_flattened", "is_main", "local", "merge_rows", "rank", "shard_group", "world_size"]

_FSDP1_WRAPPER = "_fsdp_wrapped_module"


def _initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def world_size(group=None) -> int:
    """Processes in ``group`` (default: the world); 1 outside ``torch.distributed``."""
    return torch.distributed.get_world_size(group) if _initialized() else 1


def rank(group=None) -> int:
    """This process's rank in ``group``; 0 outside ``torch.distributed``."""
    return torch.distributed.get_rank(group) if _initialized() else 0


def is_main(group=None) -> bool:
    """Rank 0, or not distributed: the process that writes logs and files."""
    return rank(group) == 0


def active(setting, group=None) -> bool:
    """Whether to merge across ranks: ``setting`` ``True``/``False``, or ``"auto"`` (when a process group
    with more than one rank is initialized)."""
    if setting == "auto":
        return world_size(group) > 1
    if not isinstance(setting, bool):
        raise ValueError(f"distributed must be 'auto', True or False, got {setting!r}")
    if setting and not _initialized():
        raise ValueError("distributed=True needs torch.distributed.init_process_group() first")
    return setting


def gather_rows(flat: Tensor, group=None) -> np.ndarray:
    """Every rank's ``flat`` (equal lengths) as the rows of a ``(world, n)`` float64 host array.

    One all-gather on ``flat``'s device (gloo: CPU, NCCL: CUDA), then one transfer to the host: the step's
    only synchronisation. Every rank of ``group`` must call it.
    """
    world = world_size(group)
    out = flat.new_empty(world * flat.numel())
    # all_gather_single (torch ≥ 2.13) replaces all_gather_into_tensor; both fill one flat output
    gather = getattr(torch.distributed, "all_gather_single", None) or torch.distributed.all_gather_into_tensor
    gather(out, flat.reshape(-1).contiguous(), group=group)
    return out.reshape(world, -1).cpu().numpy().astype(np.float64)


class Merge:
    """How one slot of a gathered vector combines across ranks (codes for :func:`merge_rows`)."""

    SUM, MAX, MIN, MEAN, FIRST, NORM, GRAD_SUM, GRAD_SQUARES = range(8)


def merge_rows(rows: np.ndarray, rules: np.ndarray) -> np.ndarray:
    """Combine ``(world, n)`` gathered values slot by slot: sums (``Σx``, ``Σx²``, counts) add, maxima and
    minima reduce, means average, replicated values come from rank 0, shard norms ``sqrt(Σ_r x_r²)``.

    ``GRAD_SUM`` and ``GRAD_SQUARES`` are ``Σg`` and ``Σg²`` of gradients of a rank's own loss: DDP and
    FSDP average gradients over ranks, so the objective they descend is the mean of the ranks' losses, whose
    gradient is each rank's divided by ``world``; these add and divide by ``world`` and ``world²``.
    """
    out = rows[0].copy()
    world = rows.shape[0]
    with np.errstate(invalid="ignore", over="ignore"):
        for code, reduce in ((Merge.SUM, lambda r: r.sum(0)), (Merge.GRAD_SUM, lambda r: r.sum(0) / world),
                             (Merge.GRAD_SQUARES, lambda r: r.sum(0) / world**2), (Merge.MAX, lambda r: r.max(0)),
                             (Merge.MIN, lambda r: r.min(0)), (Merge.MEAN, lambda r: r.mean(0)),
                             (Merge.NORM, lambda r: np.sqrt((r * r).sum(0)))):
            mask = rules == code
            if mask.any():
                out[mask] = reduce(rows[:, mask])
    return out


def local(t: Tensor) -> Tensor:
    """A DTensor's local shard (FSDP2 parameters and gradients); any other tensor as it is."""
    to_local = getattr(t, "to_local", None)
    return to_local() if callable(to_local) and hasattr(t, "placements") else t


def is_flattened(t: Tensor) -> bool:
    """Whether ``t`` is (a view into) an FSDP1 flattened parameter: a 1-D piece whose layout is lost."""
    return bool(getattr(t, "_fsdp_flattened", False))


def flat_shard_groups(module: nn.Module) -> dict[int, object]:
    """``id(parameter) → process group`` for every parameter of ``module`` that FSDP1 shards.

    With ``use_orig_params=True`` these are the original parameters (each rank holds a 1-D piece, possibly
    empty); otherwise the ``FlatParameter`` of each wrapped unit. Units with the ``NO_SHARD`` strategy hold
    whole tensors and are left out. The handles are FSDP1's internals, read the way its own
    ``clip_grad_norm_`` reads them.
    """
    if not _initialized():  # FSDP1 cannot be built without a process group; skip its (heavy) import
        return {}
    from torch.distributed.fsdp import FullyShardedDataParallel

    groups: dict[int, object] = {}
    for unit in FullyShardedDataParallel.fsdp_modules(module):
        handle = getattr(unit, "_handle", None)
        if handle is None or not handle.uses_sharded_strategy:
            continue
        flat = handle.flat_param
        for p in flat._params if handle._use_orig_params else [flat]:
            groups[id(p)] = unit.process_group
    return groups


def clean_name(name: str) -> str:
    """A module or parameter name without FSDP1's wrapper segments: ``0.weight``, not
    ``_fsdp_wrapped_module.0._fsdp_wrapped_module.weight``."""
    if _FSDP1_WRAPPER not in name:
        return name
    return ".".join(part for part in name.split(".") if part != _FSDP1_WRAPPER)


def shard_group(t: Tensor, flat_groups: dict[int, object] | None = None):
    """The process group over which ``t``'s local shards partition it, or ``None`` when ``t`` is whole on
    every rank (a plain tensor, or a replicated DTensor). ``flat_groups`` (:func:`flat_shard_groups`)
    names the FSDP1 shards, which a plain tensor cannot tell about itself.

    Only one-dimensional meshes are supported: a DTensor on a 2-D mesh (HSDP) raises ``ValueError``.
    """
    placements = getattr(t, "placements", None)
    if placements is None:
        return flat_groups.get(id(t)) if flat_groups else None
    if not any(p.is_shard() for p in placements):
        return None
    mesh = t.device_mesh
    if mesh.ndim != 1:
        raise ValueError(f"DTensors on a {mesh.ndim}-D device mesh are not supported; use a 1-D mesh (FSDP2 "
                         "fully_shard over one mesh dimension)")
    return mesh.get_group()


@torch.no_grad()
def broadcast_parameters_(model: nn.Module, src: int = 0, group=None) -> nn.Module:
    """Copy ``src``'s parameters and buffers to every rank (what DDP does when it wraps a model), so that
    ranks that initialized differently end identical. Every rank must call it."""
    if world_size(group) > 1:
        for tensor in [*model.parameters(), *model.buffers()]:
            torch.distributed.broadcast(tensor.data, src=src, group=group)
    return model
