"""Monitor (every step) against a bare training step, and against the common ways of watching a model.

Workloads: (a) a 20-layer, 512-wide tanh MLP, batch 256, SGD; (b) a small CNN (3 conv layers of 32–64
channels, relu, 32×32 RGB inputs, batch 64), SGD. Variants, each in the same run and interleaved:

- ``bare``: forward, loss, backward, optimizer step;
- ``monitor``: the same inside ``Monitor(model, sinks=[MemorySink()])``, ``monitor.step(loss)`` every step
  (every layer's output and output-gradient moments, every parameter's norm and gradient norm, the
  update ratio every 10th step, alerts, one host transfer);
- ``item hooks``: a forward hook and a tensor hook per layer calling ``.item()`` on mean and variance;
- ``tb histograms``: TensorBoard ``add_histogram`` of every parameter and gradient every step (skipped
  without the tensorboard package).

    .venv/bin/python benchmarks/bench_monitor.py [--steps N] [--repeats R]

Each repeat times ``--steps`` steps of every variant (order rotated per repeat); the table shows the
median and the spread (min–max) of the per-repeat ratio to the bare step of the same repeat, in wall
time and in CPU time (this process's, all threads).

Blocks of 20 steps still drift apart on a shared machine (the spread reaches ±30%), so a last line
pairs steps instead: one ``Monitor(every=2)`` run alternates logged and unlogged steps, and the median
of each logged step's time over the unlogged step after it is the cost of logging, measured on
neighbouring steps. (An unlogged step runs the hooks only up to their first ``if``.)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from torch import nn

from signalprop import Monitor
from signalprop.models import mlp
from signalprop.monitor import MemorySink


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


def train_step(model, opt, x, y, loss_fn, monitor=None):
    loss = loss_fn(model(x), y)
    loss.backward()
    if monitor is not None:
        monitor.step(loss)
    opt.step()
    opt.zero_grad(set_to_none=True)


def item_hooks(model):
    handles = []
    layers = [m for m in model.modules() if any(True for _ in m.parameters(recurse=False))]

    def fwd(module, inputs, out):
        out.detach().mean().item(), out.detach().var().item()
        if out.requires_grad:
            out.register_hook(lambda g: (g.mean().item(), g.var().item()) and None)

    for m in layers:
        handles.append(m.register_forward_hook(fwd))
    return handles


def run(workload, steps: int, repeats: int) -> None:
    title, model, x, y, loss_fn = workload()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    try:
        from torch.utils.tensorboard import SummaryWriter
        tb_dir = tempfile.TemporaryDirectory()
        writer = SummaryWriter(tb_dir.name)
    except ImportError:
        writer = None

    def bare():
        for _ in range(steps):
            train_step(model, opt, x, y, loss_fn)

    def monitored():
        with Monitor(model, sinks=[MemorySink()], summary=False) as monitor:
            for _ in range(steps):
                train_step(model, opt, x, y, loss_fn, monitor)

    def hooked():
        handles = item_hooks(model)
        try:
            bare()
        finally:
            for h in handles:
                h.remove()

    def tb():
        for step in range(steps):
            loss = loss_fn(model(x), y)
            loss.backward()
            for name, p in model.named_parameters():
                writer.add_histogram(f"w/{name}", p.detach(), step)
                writer.add_histogram(f"g/{name}", p.grad, step)
            opt.step()
            opt.zero_grad(set_to_none=True)

    variants = {"bare": bare, "monitor": monitored, "item hooks": hooked}
    if writer is not None:
        variants["tb histograms"] = tb
    for fn in variants.values():  # warm up
        fn()
    times = {k: [] for k in variants}
    cpu = {k: [] for k in variants}
    names = list(variants)
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            start, start_cpu = time.perf_counter(), time.process_time()
            variants[name]()
            times[name].append((time.perf_counter() - start) / steps)
            cpu[name].append((time.process_time() - start_cpu) / steps)
    print(f"\n{title}: {steps} steps × {repeats} repeats")
    print(f"{'variant':<14} {'ms/step':>8} {'ratio':>7} {'spread':>13} {'CPU ratio':>10} {'spread':>13}")
    for name in names:
        ratios = [t / b for t, b in zip(times[name], times["bare"])]
        cpu_ratios = [t / b for t, b in zip(cpu[name], cpu["bare"])]
        print(f"{name:<14} {statistics.median(times[name]) * 1e3:8.2f} {statistics.median(ratios):7.3f} "
              f"{min(ratios):6.3f}–{max(ratios):.3f} {statistics.median(cpu_ratios):10.3f} "
              f"{min(cpu_ratios):6.3f}–{max(cpu_ratios):.3f}")
    if writer is not None:
        writer.close()
        tb_dir.cleanup()
    logged, unlogged = paired_steps(model, opt, x, y, loss_fn, steps * repeats)
    ratios = [a / b for a, b in zip(logged, unlogged)]
    print(f"{'paired':<14} {statistics.median(logged) * 1e3:8.2f} {statistics.median(ratios):7.3f} "
          f"{'':13} (logged / next unlogged step of one Monitor(every=2) run, {len(ratios)} pairs)")


def paired_steps(model, opt, x, y, loss_fn, steps: int) -> tuple[list[float], list[float]]:
    """Step times of a ``Monitor(every=2)`` run: logged (even) steps and the unlogged step after each."""
    logged, unlogged = [], []
    with Monitor(model, sinks=[MemorySink()], summary=False, every=2) as monitor:
        for _ in range(10):  # warm up
            train_step(model, opt, x, y, loss_fn, monitor)
        for _ in range(2 * steps):
            was_logged = monitor.logging
            start = time.perf_counter()
            train_step(model, opt, x, y, loss_fn, monitor)
            (logged if was_logged else unlogged).append(time.perf_counter() - start)
    return logged, unlogged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    for workload in (mlp_workload, cnn_workload):
        run(workload, args.steps, args.repeats)


if __name__ == "__main__":
    main()
