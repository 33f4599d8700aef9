"""Monitor (every step) against a bare training step, and against the common ways of watching a model.

Workloads: (a) a 20-layer, 512-wide tanh MLP, batch 256, SGD; (b) a small CNN (3 conv layers of 32–64
channels, relu, 32×32 RGB inputs, batch 64), SGD. Variants, each training its own copy of the same
model (same initial weights, same batch):

- ``bare``: forward, loss, backward, optimizer step;
- ``monitor``: the same inside ``Monitor(model, sinks=[MemorySink()])``, ``monitor.step(loss)`` every step
  (every layer's output and output-gradient moments, every parameter's norm and gradient norm, the
  update ratio every 10th step, alerts, one host transfer);
- ``Σx, Σx² only``: per layer a forward hook and a tensor hook that compute ``sum`` and ``dot`` of the
  output and of its gradient, one transfer per step: the two memory-bound passes that exact per-layer
  moments need, and nothing else, the floor under any monitor of the seed's moments;
- ``item hooks``: a forward hook and a tensor hook per layer calling ``.item()`` on mean and variance;
- ``tb histograms``: TensorBoard ``add_histogram`` of every parameter and gradient every step (skipped
  without the tensorboard package).

    .venv/bin/python benchmarks/bench_monitor.py [--rounds N]

Each variant is paired with a bare copy and the two are interleaved step by step (AB BA AB …), so every
step is compared with the bare step of its own round, a few milliseconds away, and drifts of a shared
machine cancel. The table shows the median of the per-round ratios with their quartiles, and the ratio
of the total times. (TensorBoard's writer thread slows whatever step follows it, which is why each
variant gets its own bare partner instead of all of them sharing one.)
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from contextlib import ExitStack

import torch
from torch import nn

from signalprop import Monitor
from signalprop.models import mlp
from signalprop.monitor import MemorySink

WARMUP = 20


def mlp_workload():
    g = torch.Generator().manual_seed(0)
    model = mlp(20, 512, "tanh", "xavier_uniform", generator=g)
    x, y = torch.randn(256, 512, generator=g), torch.randn(256, 512, generator=g)
    return "20 × 512 tanh MLP, batch 256", model, x, y, nn.functional.mse_loss


def cnn_workload():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1, stride=2),
                          nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1, stride=2), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    x, y = torch.randn(64, 3, 32, 32, generator=g), torch.randint(0, 10, (64,), generator=g)
    return "CNN 3 × conv (32–64 ch), 32×32, batch 64", model, x, y, nn.functional.cross_entropy


def layers_with_parameters(model):
    return [m for m in model.modules() if any(True for _ in m.parameters(recurse=False))]


def item_hooks(net, stack: ExitStack):
    """The usual way: per layer, ``.item()`` of the output's and the output gradient's mean and variance."""
    def fwd(module, inputs, out):
        out.detach().mean().item(), out.detach().var().item()
        if out.requires_grad:
            out.register_hook(lambda g: (g.mean().item(), g.var().item()) and None)

    for m in layers_with_parameters(net):
        stack.callback(m.register_forward_hook(fwd).remove)


def sums_only(net, stack: ExitStack):
    """The floor of any exact per-layer moment monitor: ``Σx`` and ``Σx²`` (``sum`` and ``dot``, two
    memory-bound passes) of every output and output gradient, one transfer per step; nothing else."""
    values: list[torch.Tensor] = []

    def add(x):
        flat = x.detach().reshape(-1)
        values.extend((flat.sum(), torch.dot(flat, flat)))

    def fwd(module, inputs, out):
        add(out)
        if out.requires_grad:
            out.register_hook(add)

    for m in layers_with_parameters(net):
        stack.callback(m.register_forward_hook(fwd).remove)

    def after_backward(net, loss, i):
        torch.stack(values).tolist()
        values.clear()

    return after_backward


def monitor(net, stack: ExitStack):
    watching = stack.enter_context(Monitor(net, sinks=[MemorySink()], summary=False))
    return lambda net, loss, i: watching.step(loss)


def tb_histograms(net, stack: ExitStack):
    from torch.utils.tensorboard import SummaryWriter
    writer = SummaryWriter(stack.enter_context(tempfile.TemporaryDirectory()))
    stack.callback(writer.close)

    def after_backward(net, loss, i):
        for name, p in net.named_parameters():
            writer.add_histogram(f"w/{name}", p.detach(), i)
            writer.add_histogram(f"g/{name}", p.grad, i)

    return after_backward


WATCHES = {"monitor": monitor, "Σx, Σx² only": sums_only, "item hooks": item_hooks, "tb histograms": tb_histograms}


def stepper(model, loss_fn, stack: ExitStack, watch: str | None = None):
    """One training step of the variant ``watch`` (``None``: bare) on its own copy of ``model``."""
    net = copy.deepcopy(model)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    after_backward = WATCHES[watch](net, stack) if watch else None
    count = iter(range(10**9))

    def step(x, y):
        loss = loss_fn(net(x), y)
        loss.backward()
        if after_backward is not None:
            after_backward(net, loss, next(count))
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def paired(workload, watch: str, rounds: int) -> tuple[list[float], list[float]]:
    """Step times of ``bare`` and of ``watch``, interleaved AB BA AB …: each variant follows itself and
    the other equally often, so neither inherits the other's cache state more than its own."""
    _, model, x, y, loss_fn = workload()
    with ExitStack() as stack:
        steps = {"bare": stepper(model, loss_fn, stack), watch: stepper(model, loss_fn, stack, watch)}
        times = {name: [] for name in steps}
        for r in range(WARMUP + rounds):
            for name in (["bare", watch] if r % 2 == 0 else [watch, "bare"]):
                start = time.perf_counter()
                steps[name](x, y)
                times[name].append(time.perf_counter() - start)
    return times["bare"][WARMUP:], times[watch][WARMUP:]


def run(workload, rounds: int) -> None:
    title = workload()[0]
    watches = ["monitor", "Σx, Σx² only", "item hooks"]
    try:
        import torch.utils.tensorboard  # noqa: F401
        watches.append("tb histograms")
    except ImportError:
        pass
    print(f"\n{title}: each variant paired with its own bare run, {rounds} rounds of one step each "
          f"(tb histograms: {max(rounds // 4, 8)}), after {WARMUP} warm-up rounds")
    print(f"{'variant':<14} {'ms/step':>8} {'bare ms':>8} {'ratio':>7} {'quartiles':>13} {'total ratio':>12}")
    for watch in watches:
        bare, own = paired(workload, watch, max(rounds // 4, 8) if watch == "tb histograms" else rounds)
        ratios = [t / b for t, b in zip(own, bare)]
        q1, _, q3 = statistics.quantiles(ratios, n=4)
        print(f"{watch:<14} {statistics.median(own) * 1e3:8.2f} {statistics.median(bare) * 1e3:8.2f} "
              f"{statistics.median(ratios):7.3f} {q1:6.3f}–{q3:.3f} {sum(own) / sum(bare):12.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    for workload in (mlp_workload, cnn_workload):
        run(workload, args.rounds)


if __name__ == "__main__":
    main()
