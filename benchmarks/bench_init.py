"""init_model vs the equivalent torch.nn.init calls on a ~100M-parameter MLP: time and peak memory.

Time: one process builds the model once and initializes it with each variant in turn, the order
alternating over ``--rounds`` rounds, after a warm-up of every variant, so every variant runs on the
same memory in the same process; each variant's best round and its median are reported. (Timed in
separate processes, a run swings by ±20% between processes on a shared machine, and even in one
process the median of 15 rounds moves by ±5% between runs: other tenants only ever add time, so the
best round is the steadier figure, as ``timeit`` advises.)

Memory: each variant's peak RSS in a fresh process of its own (peak RSS cannot be reset inside one),
against the RSS of the allocated model before the init: what an init allocates on top of the model.

    ./dev.sh bench            # or: .venv/bin/python benchmarks/bench_init.py [--rounds N] [--width W]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

VARIANTS = ["torch", "signalprop-unmeasured", "signalprop"]
LABELS = {
    "torch": "torch.nn.init calls",
    "signalprop-unmeasured": "init_model(measure=False)",
    "signalprop": "init_model (default)",
}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _setup(depth: int, width: int, scheme: str):
    """The initializer of each variant and an allocated model (every page touched)."""
    import torch

    from signalprop import init_model
    from signalprop.models import mlp

    def initializer(variant: str):
        def run(model: torch.nn.Module, generator: torch.Generator) -> None:
            if variant.startswith("signalprop"):
                init_model(model, scheme, "zeros", generator=generator, measure=variant == "signalprop")
            else:
                fill = getattr(torch.nn.init, scheme + "_")
                for module in model.modules():
                    if isinstance(module, torch.nn.Linear):
                        fill(module.weight, generator=generator)
                        torch.nn.init.zeros_(module.bias)

        return run

    runs = {v: initializer(v) for v in VARIANTS}
    # warm-up on a tiny model: one-time operator and library start-up is not the cost being compared
    for run in runs.values():
        run(mlp(2, 8, "tanh"), torch.Generator().manual_seed(0))
    with torch.device("meta"):
        model = mlp(depth, width, "tanh")
    model.to_empty(device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()  # touch every page so the baseline RSS holds the model
    return runs, model, torch


def time_worker(depth: int, width: int, scheme: str, rounds: int) -> dict:
    runs, model, torch = _setup(depth, width, scheme)
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for r in range(rounds):
        for variant in VARIANTS if r % 2 == 0 else VARIANTS[::-1]:
            generator = torch.Generator().manual_seed(0)
            start = time.perf_counter()
            runs[variant](model, generator)
            times[variant].append(time.perf_counter() - start)
    return {"seconds": {v: min(t) for v, t in times.items()},
            "median": {v: statistics.median(t) for v, t in times.items()},
            "params": sum(p.numel() for p in model.parameters())}


def memory_worker(variant: str, depth: int, width: int, scheme: str) -> dict:
    runs, model, torch = _setup(depth, width, scheme)
    base = _rss_bytes()
    runs[variant](model, torch.Generator().manual_seed(0))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"peak_rss": peak, "extra_peak": max(peak - base, 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--width", type=int, default=3162, help="10 × 3162² ≈ 100M parameters")
    parser.add_argument("--scheme", default="xavier_uniform", choices=["xavier_uniform", "xavier_normal",
                                                                       "kaiming_uniform", "orthogonal"])
    parser.add_argument("--worker", choices=["time", *VARIANTS], help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = ["--depth", str(args.depth), "--width", str(args.width), "--scheme", args.scheme]
    if args.worker == "time":
        print(json.dumps(time_worker(args.depth, args.width, args.scheme, args.rounds)))
        return
    if args.worker:
        print(json.dumps(memory_worker(args.worker, args.depth, args.width, args.scheme)))
        return

    def spawn(*extra: str) -> dict:
        cmd = [sys.executable, __file__, *shape, *extra]
        return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)

    timing = spawn("--worker", "time", "--rounds", str(args.rounds))
    memory = {v: spawn("--worker", v) for v in VARIANTS}
    seconds = timing["seconds"]
    print(f"init of a {args.depth}-layer MLP, width {args.width} ({timing['params'] / 1e6:.1f}M parameters), "
          f"{args.scheme}; time: best and median of {args.rounds} alternating rounds in one process; "
          f"memory: a fresh process each")
    median = timing["median"]
    print(f"{'':30}{'best (s)':>10}{'ratio':>8}{'median (s)':>12}{'ratio':>8}{'peak RSS (MB)':>16}"
          f"{'extra over model (MB)':>24}{'RSS ratio':>11}")
    for variant in VARIANTS:
        print(f"{LABELS[variant]:30}{seconds[variant]:10.3f}{seconds[variant] / seconds['torch']:8.3f}"
              f"{median[variant]:12.3f}{median[variant] / median['torch']:8.3f}"
              f"{memory[variant]['peak_rss'] / 2**20:16.1f}{memory[variant]['extra_peak'] / 2**20:24.1f}"
              f"{memory[variant]['peak_rss'] / memory['torch']['peak_rss']:11.3f}")


if __name__ == "__main__":
    main()
