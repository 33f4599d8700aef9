"""``Monitor``: per-layer signal statistics on every training step, with one host transfer per logged step.

The training loop::

    with Monitor(model, sinks=["train.jsonl"], clip="norm:1.0") as monitor:
        for x, y in loader:
            loss = loss_fn(model(x), y)
            loss.backward()              # (repeat forward/backward to accumulate gradients)
            monitor.step(loss)           # after backward, before optimizer.step()
            optimizer.step()
            optimizer.zero_grad()

On a logged step each selected layer's forward hook adds ``Σh`` and ``Σh²`` of its output (and, for
relu-like activations, each unit's maximum over the batch, 0 for a dead unit) to a list of device
tensors, and a hook on the output adds ``Σ∂ℓ/∂h`` and ``Σ(∂ℓ/∂h)²`` when backward reaches it. Each
parameter's squared gradient norm ``g·g`` is taken as its gradient is accumulated (in cache); every
``update_every`` steps ``step()`` adds the weight norms and ``‖Δw‖`` for the update ratio ``‖Δw‖/‖w‖``;
the loss and the clip factor, then moves the whole list to the host in one transfer (the square roots
are taken there). Nothing else synchronises.

Under ``torch.distributed`` (``distributed="auto"``, the default, when a process group of more than one
rank is initialized) that transfer is preceded by one ``all_gather`` of the list, with each layer's
element counts, and the host merges the ranks exactly (see :mod:`signalprop.distributed`): sums and
counts add, so the moments are those of the global batch; dead units are units dead on every rank;
gradient and weight norms of FSDP2 and FSDP1 shards combine as ``sqrt(Σ‖·‖²)``, DDP's replicated ones come
from one rank; the loss is the mean over ranks, and ``∂ℓ/∂h`` is the gradient of that mean (each rank's
divided by the number of ranks), the objective whose averaged gradients DDP and FSDP apply. Every rank
gets the same record and the same alerts (so
``raise_on_nonfinite`` raises on all of them); only rank 0 writes to the sinks and prints the summary.
Histograms are rank 0's.

With gradient accumulation the parameter statistics are those of the accumulated ``.grad`` that the
optimizer will use, and the layer moments pool every micro-batch of the step. Forward passes run with
gradients disabled (evaluation) are not recorded.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable

import torch
from torch import nn

from .. import clip as _clip
from .. import distributed as _dist
from .._select import Selector, as_selectors, matches
from ..activations._registry import from_module
from ..probing._capture import tensor_leaves
from ..probing._stats import unit_dim
from ._record import BWD, DEAD, FWD, HIST, Thresholds, alerts, build_record
from ._sinks import as_sink

__all__ = ["Monitor", "NonFiniteError"]

_RELU_LIKE = {"relu", "relu6"}


class NonFiniteError(FloatingPointError):
    """Raised by ``Monitor(raise_on_nonfinite=True)``; ``.alert`` names the step and the layer."""

    def __init__(self, alert: dict):
        super().__init__(alert["message"])
        self.alert = alert


def _main_output(output) -> torch.Tensor | None:
    """The first floating-point tensor of a structured output (LSTM: out, not (h, c))."""
    return next((t for _, t in tensor_leaves(output) if t.dtype.is_floating_point and t.numel() > 0), None)


def _unit_peaks(x: torch.Tensor, unit: int) -> torch.Tensor:
    """Each unit's maximum over everything else (float32, 1-D): ``≤ 0`` for a dead relu unit. A
    contiguous ``(N, C, …)`` tensor is reduced over its trailing positions first, a contiguous pass."""
    if x.dim() == 1:
        return x.float()
    if unit == 1 and x.dim() > 2 and x.is_contiguous():
        x = x.view(x.shape[0], x.shape[1], -1).amax(2)
    return x.amax(dim=[d for d in range(x.dim()) if d != unit]).float().reshape(-1)


def _squared_norm(t: torch.Tensor) -> torch.Tensor:
    """``‖t‖²`` as a 0-d device tensor: one BLAS dot for contiguous float32/float64 tensors (about half
    the time of ``vector_norm``, and overflowing where it does: past ``sqrt`` of the dtype's maximum)."""
    if (t.dtype == torch.float32 or t.dtype == torch.float64) and t.is_contiguous():
        flat = t.view(-1)
        return torch.dot(flat, flat)
    return torch.linalg.vector_norm(t).float().square()


def _flatten(pieces: list[torch.Tensor]) -> torch.Tensor:
    """One vector of 0-d and 1-d device tensors, in order: runs of scalars are stacked (one call for a
    run, where ``cat`` would need a reshape of each)."""
    device = pieces[0].device
    chunks: list[torch.Tensor] = []
    run: list[torch.Tensor] = []
    for p in pieces:
        if p.device != device:
            p = p.to(device)
        if p.dim() == 0:
            run.append(p)
            continue
        if run:
            chunks.append(torch.stack(run))
            run = []
        chunks.append(p)
    if run:
        chunks.append(torch.stack(run))
    return torch.cat(chunks) if len(chunks) > 1 else chunks[0]


def _relu_like(module: nn.Module) -> bool:
    act = from_module(module)
    return act is not None and act.name in _RELU_LIKE


def _default_layer(name: str, module: nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False)) or _relu_like(module)


def parse_clip(clip) -> Callable[[nn.Module], object] | None:
    """``None``, ``"norm:MAX[:TYPE]"``, ``"value:C"``, ``"agc:λ"`` or a callable ``clip(model)``."""
    if clip is None or callable(clip):
        return clip
    if not isinstance(clip, str):
        raise TypeError(f"clip must be None, a string like 'norm:1.0' or a callable, got {type(clip).__name__}")
    kind, _, rest = clip.partition(":")
    try:
        args = [float(a) for a in rest.split(":")] if rest else []
    except ValueError:
        raise ValueError(f"clip {clip!r}: arguments must be numbers") from None
    if kind == "norm" and len(args) in (1, 2) and args[0] > 0:
        return lambda model: _clip.clip_grad_norm_(model, *args, report=True)
    if kind == "value" and len(args) == 1 and args[0] > 0:
        return lambda model: _clip.clip_grad_value_(model.parameters(), args[0], report=True)
    if kind == "agc" and len(args) in (1, 2) and args[0] > 0:
        return lambda model: _clip.adaptive_clip_grad_(model, *args)
    raise ValueError(f"clip must be 'norm:MAX[:TYPE]', 'value:C' or 'agc:LAMBDA[:EPS]' with positive numbers, "
                     f"got {clip!r}")


class Monitor:
    """Watch a model's training: the seed's per-layer moments, norms, update sizes and NaN/Inf, every step.

    Args:
        model: the ``nn.Module`` being trained.
        every: log every k-th step (hooks do nothing on the others).
        sinks: where records go: sink objects, or paths (``.jsonl``, ``.csv``).
        clip: gradient clipping applied in ``step()`` after the gradients are measured:
            ``"norm:1.0"``, ``"value:0.5"``, ``"agc:0.01"`` or ``clip(model)``.
        layers: module types, name globs or predicates (default: modules with parameters of their
            own, and relu-like activations for the dead-unit fraction).
        thresholds: when to raise alerts (:class:`Thresholds`).
        raise_on_nonfinite: raise :class:`NonFiniteError` at the first logged step holding NaN/Inf.
        update_every: every k-th step, each weight's norm and ``‖Δw‖/‖w‖`` (the update the optimizer
            made after the step before, from a copy of the weights taken then). Weights move slowly and
            each of these reads the whole model, so they are not measured every step; 0 turns them off.
        summary: print a short summary to stderr when the context exits.
        distributed: ``"auto"`` (merge across ranks when ``torch.distributed`` runs more than one),
            ``True`` or ``False`` (each rank keeps its own statistics and writes its own sinks).
        process_group: the group to merge over (default: the world).
    """

    def __init__(self, model: nn.Module, *, every: int = 1, sinks: Iterable = (), clip=None,
                 layers: Selector | list[Selector] | None = None, thresholds: Thresholds | None = None,
                 raise_on_nonfinite: bool = False, update_every: int = 10, summary: bool = True,
                 distributed="auto", process_group=None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        for name, value, low in (("every", every, 1), ("update_every", update_every, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        self.model = model
        self.every = every
        self.update_every = update_every
        self.thresholds = thresholds or Thresholds()
        self.raise_on_nonfinite = raise_on_nonfinite
        self.summary = summary
        self._clip = parse_clip(clip)
        self._clip_name = clip if isinstance(clip, str) else getattr(clip, "__name__", None)
        selectors = as_selectors(layers, "layers")
        self._layers = [(_dist.clean_name(name) or type(m).__name__, m) for name, m in model.named_modules()
                        if (_default_layer(name, m) if selectors is None else matches(selectors, name, m))]
        self._params = [(_dist.clean_name(n), p) for n, p in model.named_parameters() if p.requires_grad]
        self._group = process_group
        self._merge = _dist.active(distributed, process_group)
        self._main = _dist.is_main(process_group) if self._merge else True
        # FSDP shards: their norms combine across ranks as sqrt(Σ‖·‖²); whole tensors come from one rank
        flat = _dist.flat_shard_groups(model)
        self._sharded = [_dist.shard_group(p, flat) is not None for _, p in self._params]
        self.sinks = [as_sink(s) for s in sinks]
        self._histogram_bins = max((getattr(s, "bins", 64) for s in self.sinks if s.histograms), default=0)
        self.alerts: list[dict] = []
        self.last: dict | None = None
        self._handles: list = []
        self._step = 0
        self._logged = 0
        self._values: list[torch.Tensor] = []
        self._meta: list[tuple] = []
        self._snapshot: list[torch.Tensor] | None = None
        self._snapshot_ready = False
        self._grad_square_cache: dict[int, torch.Tensor] = {}
        self._started = 0.0
        self._active = False

    # ------------------------------------------------------------------ context
    def __enter__(self) -> "Monitor":
        try:
            for index, (_, module) in enumerate(self._layers):
                self._handles.append(module.register_forward_hook(self._forward_hook(index, _relu_like(module))))
            # under torch.distributed, DDP and FSDP write the averaged gradient after the accumulation hooks
            # have run, so the norms are read in step() instead
            if _dist.world_size(self._group) == 1:
                for index, (_, p) in enumerate(self._params):
                    self._handles.append(p.register_post_accumulate_grad_hook(self._param_hook(index)))
        except BaseException:
            self._remove()
            raise
        self._started = time.perf_counter()
        self._active = True
        return self

    def __exit__(self, *exc) -> None:
        self._remove()
        for sink in self.sinks:
            sink.close()
        if self.summary and self._main:
            print(self.summary_text(), file=sys.stderr)

    def _remove(self) -> None:
        self._active = False
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._values.clear()
        self._meta.clear()
        self._snapshot, self._snapshot_ready = None, False
        self._grad_square_cache.clear()

    @property
    def logging(self) -> bool:
        """Whether the current step (since the last ``step()``) is recorded."""
        return self._step % self.every == 0

    # ------------------------------------------------------------------ hooks
    def _forward_hook(self, index: int, dead_only: bool):
        grad_hook = self._grad_hook(index)

        def hook(module, inputs, output):
            if not (self._active and self.logging and torch.is_grad_enabled()):
                return
            h = output if type(output) is torch.Tensor else _main_output(output)
            if h is None or not h.dtype.is_floating_point or h.numel() == 0:
                return
            x = h.detach()
            if dead_only:  # each unit's maximum over the batch: 0 when the unit is dead
                peak = _unit_peaks(x, unit_dim(module, x) % x.dim())
                self._values.append(peak)
                self._meta.append((index, DEAD, peak.numel()))
                return
            self._add_sums(index, FWD, x)
            if self._histogram_bins:
                self._add_histogram(index, x)
            if h.requires_grad:
                h.register_hook(grad_hook)

        return hook

    def _grad_hook(self, index: int):
        def hook(grad: torch.Tensor) -> None:
            if self._active:
                self._add_sums(index, BWD, grad.detach())

        return hook

    def _add_sums(self, index: int, what: str, x: torch.Tensor) -> None:
        """``Σx`` and ``Σx²`` (a dot product: one BLAS call) as float32 device scalars."""
        flat = x.reshape(-1)
        if flat.dtype != torch.float32 and flat.dtype != torch.float64:
            flat = flat.float()
        self._values += [flat.sum(), torch.dot(flat, flat)]
        self._meta.append((index, what, flat.numel()))

    def _add_histogram(self, index: int, x: torch.Tensor) -> None:
        """Counts in ``bins`` equal bins over ``[min, max]``, with min and max kept on the device: the
        values are mapped to ``[0, bins]`` there, so ``histc`` gets constant bounds and nothing syncs."""
        bins = self._histogram_bins
        flat = x.reshape(-1).float()
        lo, hi = torch.aminmax(flat)
        scaled = (flat - lo) * (bins / (hi - lo).clamp_min(1e-30))
        counts = torch.histc(scaled, bins=bins, min=0, max=bins)
        self._values += [lo, hi, counts]
        self._meta.append((index, HIST, bins))

    # ------------------------------------------------------------------ step
    @torch.no_grad()
    def step(self, loss: torch.Tensor | float | None = None) -> dict | None:
        """Close the current step: measure parameters, clip, and on a logged step transfer and write the
        record (returned; ``None`` on other steps). Call after ``backward()``, before ``optimizer.step()``."""
        if not self._active:
            raise RuntimeError("Monitor.step() outside the monitor's `with` block")
        logging = self.logging
        extras: dict[str, int] = {}
        tail: list[torch.Tensor] = []
        snapshot_due = self._snapshot_due()
        if logging:
            grad_squares = self._grad_squares()
            tail += grad_squares
            extras["grad_square"] = len(grad_squares)
            if self.update_every and self._step % self.update_every == 0:
                weights = self._weights()
                tail += _clip.norms(weights)
                extras["param_norm"] = len(weights)
                if self._snapshot_ready:  # ‖Δw‖; the ratio to ‖w‖ is taken on the host
                    torch._foreach_sub_(self._snapshot, weights)  # the buffer now holds −Δw
                    tail += _clip.norms(self._snapshot)
                    extras["update_norm"] = len(weights)
            if loss is not None:
                tail.append(loss.detach().reshape(()) if isinstance(loss, torch.Tensor) else torch.tensor(float(loss)))
                extras["loss"] = 1
        self._snapshot_ready = False
        if self._clip is not None:
            result = self._clip(self.model)
            if logging and isinstance(result, _clip.Clipped) and result.factor.numel():
                tail.append(result.factor.amin())
                extras["clip_factor"] = 1
        if snapshot_due:
            self._take_snapshot()
        self._grad_square_cache.clear()
        record = None
        if logging:
            record = self._log(extras, tail)
        self._values.clear()
        self._meta.clear()
        self._step += 1
        if record is not None and self.raise_on_nonfinite:
            bad = next((a for a in record["alerts"] if a["kind"] == "nonfinite"), None)
            if bad:
                raise NonFiniteError(bad)
        return record

    def _param_hook(self, index: int):
        """After a parameter's gradient is accumulated: its squared norm, while it is in cache. With
        gradient accumulation the last micro-batch's call, on the summed gradient, wins."""
        def hook(p: torch.Tensor) -> None:
            if self._active and self.logging:
                self._grad_square_cache[index] = _squared_norm(_dist.local(p.grad))

        return hook

    def _has_grad(self, index: int) -> bool:
        """Whether parameter ``index`` gets a gradient slot. A shard always does, so that every rank sends
        the same slots: an FSDP1 rank whose piece of a parameter is empty holds no gradient for it."""
        return self._params[index][1].grad is not None or self._sharded[index]

    def _grad_squares(self) -> list[torch.Tensor]:
        """``‖g‖²`` of each parameter holding a gradient (which a hook may not have seen: set by hand, say)."""
        cache = self._grad_square_cache
        return [cache[i] if i in cache else
                _squared_norm(_dist.local(p.grad.detach())) if p.grad is not None else
                _dist.local(p).new_zeros((), dtype=torch.float32)
                for i, (_, p) in enumerate(self._params) if self._has_grad(i)]

    def _snapshot_due(self) -> bool:
        """Whether to copy the weights now, so the next step's record holds ``‖Δw‖/‖w‖`` for the optimizer
        step that follows this call."""
        upcoming = self._step + 1
        return bool(self.update_every) and upcoming % self.update_every == 0 and upcoming % self.every == 0

    def _weights(self) -> list[torch.Tensor]:
        """The trained weights as plain tensors (an FSDP2 rank's own shards)."""
        return [_dist.local(p.detach()) for _, p in self._params]

    def _take_snapshot(self) -> None:
        weights = self._weights()
        if self._snapshot is None:  # allocated once, reused
            self._snapshot = [torch.empty_like(w) for w in weights]
        for buffer, w in zip(self._snapshot, weights):
            buffer.copy_(w)
        self._snapshot_ready = True

    def _log(self, extras: dict, tail: list[torch.Tensor]) -> dict:
        pieces = self._values + tail
        meta = self._meta
        if self._merge:
            values, meta = self._merged(pieces, extras)
        elif pieces:
            values = _flatten(pieces).tolist()  # the one host transfer of the step
        else:
            values = []
        layers = [(name, type(m).__name__) for name, m in self._layers]
        params = [(n, self._has_grad(i)) for i, (n, _) in enumerate(self._params)]
        record = build_record(self._step, values, meta, layers, params, extras)
        record["time"] = time.perf_counter() - self._started
        if self._clip_name:
            record["clip"] = self._clip_name
        record["alerts"] = alerts(record, self.thresholds)
        self.alerts += record["alerts"]
        self.last = record
        self._logged += 1
        if self._main:
            for sink in self.sinks:
                sink.write(record)
        return record

    def _merged(self, pieces: list[torch.Tensor], extras: dict) -> tuple[list[float], list[tuple]]:
        """All ranks' values merged (one all_gather, then one transfer), and the meta with global counts.

        The vector is float64 so that counts and sums stay exact; every rank must log the same layers in
        the same order (the same model, called the same number of times per step).
        """
        M = _dist.Merge
        rules: list[int] = []
        counts: list[float] = []
        for _, what, n in self._meta:
            if what in (FWD, BWD):
                rules += [M.SUM, M.SUM] if what == FWD else [M.GRAD_SUM, M.GRAD_SQUARES]
                counts.append(float(n))
            elif what == DEAD:
                rules += [M.MAX] * n
            else:  # histograms: rank 0's
                rules += [M.FIRST] * (2 + n)
        with_grad = [sharded for i, sharded in enumerate(self._sharded) if self._has_grad(i)]
        norm_rules = {"param_norm": self._sharded, "update_norm": self._sharded}
        for key, count in extras.items():
            if key == "grad_square":  # squared norms of shards add
                rules += [M.SUM if sharded else M.FIRST for sharded in with_grad]
            elif key in norm_rules:
                rules += [M.NORM if sharded else M.FIRST for sharded in norm_rules[key]]
            else:
                rules += [M.MEAN if key == "loss" else M.MIN] * count
        device = pieces[0].device if pieces else torch.device("cpu")
        flat = torch.cat([*(p.reshape(-1).to(device, torch.float64) for p in pieces),
                          torch.tensor(counts, dtype=torch.float64).to(device, non_blocking=True)])
        rules += [M.SUM] * len(counts)
        merged = _dist.merge_rows(_dist.gather_rows(flat, self._group), torch.tensor(rules).numpy())
        values = merged[: len(merged) - len(counts)].tolist()
        totals = iter(merged[len(merged) - len(counts):].tolist())
        meta = [(i, what, int(next(totals)) if what in (FWD, BWD) else n) for i, what, n in self._meta]
        return values, meta

    # ------------------------------------------------------------------ summary
    def summary_text(self) -> str:
        """A few lines: steps seen and logged, the first alert of each kind, the last record's extremes."""
        lines = [f"signalprop monitor: {self._step} steps, {self._logged} logged"]
        seen = set()
        for a in self.alerts:
            if a["kind"] not in seen:
                seen.add(a["kind"])
                count = sum(1 for b in self.alerts if b["kind"] == a["kind"])
                lines.append(f"  {a['kind']} ({count} logged steps), first: {a['message']}")
        last = self.last
        if last and last["layers"]:
            fwd = [r for r in last["layers"] if r["fwd_var"] is not None]
            bwd = [r for r in last["layers"] if r["bwd_var"] is not None]
            if fwd:
                lo, hi = min(fwd, key=lambda r: r["fwd_var"]), max(fwd, key=lambda r: r["fwd_var"])
                lines.append(f"  step {last['step']}: Var[h] from {lo['fwd_var']:.3g} ({lo['name']}) to "
                             f"{hi['fwd_var']:.3g} ({hi['name']})")
            if bwd:
                lo, hi = min(bwd, key=lambda r: r["bwd_var"]), max(bwd, key=lambda r: r["bwd_var"])
                lines.append(f"  step {last['step']}: Var[∂ℓ/∂h] from {lo['bwd_var']:.3g} ({lo['name']}) to "
                             f"{hi['bwd_var']:.3g} ({hi['name']})")
        if not self.alerts and self._logged:
            lines.append("  no alerts")
        return "\n".join(lines)
