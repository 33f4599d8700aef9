"""probe vs a bare forward + backward on a 100-layer, 1024-wide tanh MLP, batch 256, in the same run.

Both back-propagate the same standard-normal grad_output, and both start with no ``.grad`` held (a probe
that finds gradients keeps them and allocates its own beside them, which a bare loop would not). The probe also measures every Linear and Tanh
output and gradient (400 tensors), every parameter, and the mean-field prediction; its only host
synchronisation is one transfer of all statistics at the end.

    .venv/bin/python benchmarks/bench_probe.py [--rounds N] [--depth D] [--width W] [--batch B]

Wall time is what a user waits; CPU time (both cores) is steadier on a shared machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from signalprop import probe
from signalprop.models import mlp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    model = mlp(args.depth, args.width, "tanh", "xavier_uniform", generator=generator)
    x = torch.randn(args.batch, args.width, generator=generator)

    def bare():
        noise = torch.randn(args.batch, args.width, generator=torch.Generator().manual_seed(0))
        model(x).backward(noise)
        for p in model.parameters():
            p.grad = None  # both variants start and end with no gradients held

    def probed():
        probe(model, x, generator=torch.Generator().manual_seed(0))

    bare(), probed()  # warm up
    wall = {"bare": [], "probe": []}
    cpu = {"bare": [], "probe": []}
    for r in range(args.rounds):
        for name, fn in ((("bare", bare), ("probe", probed)) if r % 2 == 0 else (("probe", probed), ("bare", bare))):
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    print(f"{args.depth}-layer MLP, width {args.width}, batch {args.batch}, tanh; {args.rounds} rounds, medians")
    for clock, t in (("wall", wall), ("CPU", cpu)):
        b, p = statistics.median(t["bare"]), statistics.median(t["probe"])
        print(f"{clock:>4}: bare forward + backward {b * 1e3:8.1f} ms, probe {p * 1e3:8.1f} ms, ratio {p / b:.3f}")


if __name__ == "__main__":
    main()
