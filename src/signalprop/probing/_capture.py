"""Hooks that record per-call statistics of selected modules' outputs and of their gradients.

A forward hook on each selected module computes the output's statistics on the device when the module
returns (before any in-place op that follows can change it) and registers a tensor hook on each floating
output that requires grad, which computes the statistics of ``∂ℓ/∂output`` when backward reaches it.
Nothing is synchronised with the host here; :meth:`Capture.collect` stacks everything and transfers once.
Hooks are removed when the context exits, also on exceptions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .. import distributed as _dist
from .._select import Selector, as_selectors, matches
from ..activations._registry import from_module
from ._stats import STAT_FIELDS, merge_unit_moments, summarize, unit_dim, unit_moments


@dataclass
class _Call:
    name: str
    kind: str
    role: str
    activation: str | None
    call: int
    output: str
    shape: tuple[int, ...]
    fwd: torch.Tensor
    bwd: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)


def tensor_leaves(obj, path: str = "") -> list[tuple[str, torch.Tensor]]:
    """Tensors inside nested tuples, lists, dicts and namedtuples, with their paths (``[1][0]``, ``['out']``)."""
    if isinstance(obj, torch.Tensor):
        return [(path, obj)]
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (tuple, list)):
        items = enumerate(obj)
    else:
        return []
    leaves = []
    for key, value in items:
        leaves += tensor_leaves(value, f"{path}[{key!r}]")
    return leaves


def is_activation(module: nn.Module) -> bool:
    """A module the registry recognises as an activation (the identity does not count)."""
    act = from_module(module)
    return act is not None and act.name != "identity"


def _has_own_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False))


def default_selection(name: str, module: nn.Module) -> bool:
    """Every module with parameters of its own, and every activation module."""
    return _has_own_params(module) or is_activation(module)


def select_modules(model: nn.Module, layers: Selector | list[Selector] | None) -> list[tuple[str, nn.Module]]:
    selectors = as_selectors(layers, "layers")
    chosen = []
    for name, module in model.named_modules():
        keep = default_selection(name, module) if selectors is None else matches(selectors, name, module)
        if keep:
            chosen.append((name or type(module).__name__, module))
    return chosen


class Capture:
    """Context manager: while active, every call of a selected module appends a :class:`_Call`."""

    def __init__(self, modules: list[tuple[str, nn.Module]], *, backward: bool = True):
        self.modules = modules
        self.backward = backward
        self.calls: list[_Call] = []
        self._handles: list = []
        self._counts: dict[int, int] = {}
        self._scratch: dict = {}  # temporaries for the statistics, one buffer per shape

    def __enter__(self) -> "Capture":
        try:
            for name, module in self.modules:
                self._handles.append(module.register_forward_hook(self._hook(name)))
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._remove()

    def _remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._scratch.clear()

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs, output) -> None:
            call = self._counts.get(id(module), 0)
            self._counts[id(module)] = call + 1
            act = from_module(module)
            bounds = act.bounds if act is not None else None
            role = "layer" if _has_own_params(module) else "activation" if is_activation(module) else "other"
            for path, value in tensor_leaves(output):
                if not value.dtype.is_floating_point or value.numel() == 0:
                    continue
                dim = unit_dim(module, value)
                record = _Call(name, type(module).__name__, role, act.spec if act else None, call, path,
                               tuple(value.shape),
                               unit_moments(value, dim, bounds, self._scratch))
                self.calls.append(record)
                if self.backward and value.requires_grad:
                    value.register_hook(self._grad_hook(record, dim))

        return hook

    def _grad_hook(self, record: _Call, dim: int):
        def hook(grad: torch.Tensor) -> None:
            record.bwd = unit_moments(grad, dim, None, self._scratch)

        return hook

    def collect(self, *, merge: bool = False, group=None, grad_scale: float = 1.0) -> list[dict]:
        """Every call's statistics as plain floats: one device-to-host transfer for the lot.

        With ``merge`` every rank of ``group`` must call it: one ``all_gather`` brings all ranks' vectors
        (and each tensor's values per unit), and the rows hold the moments of the global batch, gradients
        multiplied by ``grad_scale``.
        """
        if not self.calls:
            return []
        device = self.calls[0].fwd.device
        vectors = [v.to(device) for c in self.calls for v in (c.fwd, c.bwd) if v is not None]
        if merge:
            return self._rows(_merged_pieces(self.calls, vectors, group, grad_scale))
        flat = torch.cat(vectors).cpu().numpy()  # the one host synchronisation
        pieces, at = [], 0
        for v in vectors:
            pieces.append(flat[at : at + v.numel()])
            at += v.numel()
        return self._rows(pieces)

    def _rows(self, pieces: list[np.ndarray]) -> list[dict]:
        summaries = iter(summarize(pieces))
        nan = [math.nan] * len(STAT_FIELDS)
        rows = []
        for c in self.calls:
            fwd, bwd = (nan if v is None else next(summaries) for v in (c.fwd, c.bwd))
            row = {"name": c.name, "kind": c.kind, "role": c.role, "activation": c.activation, "call": c.call,
                   "output": c.output, "shape": c.shape}
            row.update({f"fwd_{k}": v for k, v in zip(STAT_FIELDS, fwd)})
            row.update({f"bwd_{k}": v for k, v in zip(STAT_FIELDS, bwd) if k != "saturated"})
            rows.append(row)
        return rows


def _merged_pieces(calls: list[_Call], vectors: list[torch.Tensor], group, grad_scale: float) -> list[np.ndarray]:
    """All ranks' :func:`unit_moments` vectors merged per tensor, from one float64 ``all_gather``;
    gradient vectors are first scaled by ``grad_scale`` (their scale entry, so means and stds scale)."""
    counts, is_grad = [], []
    for c in calls:
        units = (c.fwd.numel() - 2) // 2
        per_unit = math.prod(c.shape) / units if units else 0.0
        counts += [per_unit] * (1 if c.bwd is None else 2)
        is_grad += [False] + ([] if c.bwd is None else [True])
    flat = torch.cat([*(v.double() for v in vectors), torch.tensor(counts, dtype=torch.float64, device=vectors[0].device)])
    rows = _dist.gather_rows(flat, group)
    counts_all = rows[:, rows.shape[1] - len(counts):]
    pieces, at = [], 0
    for k, v in enumerate(vectors):
        part = rows[:, at : at + v.numel()]
        if is_grad[k] and grad_scale != 1.0:
            units = (v.numel() - 2) // 2
            part = part.copy()
            part[:, 0] *= grad_scale  # the scale entry carries the variances (stored divided by scale²)
            part[:, 2 : 2 + units] *= grad_scale  # the unit means
        pieces.append(merge_unit_moments(part, counts_all[:, k]))
        at += v.numel()
    return pieces
