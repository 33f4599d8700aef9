"""init_model vs the equivalent torch.nn.init calls on a ~100M-parameter MLP: time and peak memory.

Each measurement runs in a fresh process (so peak RSS is its own), after a warm-up of the same variant
on a tiny model; the variants alternate over several rounds in the same run, and the figures reported
are ratios of medians.

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


def worker(variant: str, depth: int, width: int, scheme: str) -> dict:
    import torch

    from signalprop import init_model
    from signalprop.models import mlp

    def run(model: torch.nn.Module, generator: torch.Generator) -> None:
        if variant.startswith("signalprop"):
            init_model(model, scheme, "zeros", generator=generator, measure=variant == "signalprop")
        else:
            fill = getattr(torch.nn.init, scheme + "_")
            for module in model.modules():
                if isinstance(module, torch.nn.Linear):
                    fill(module.weight, generator=generator)
                    torch.nn.init.zeros_(module.bias)

    # warm-up on a tiny model: one-time operator and library start-up is not the cost being compared
    run(mlp(2, 8, "tanh"), torch.Generator().manual_seed(0))
    with torch.device("meta"):
        model = mlp(depth, width, "tanh")
    model.to_empty(device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()  # touch every page so the baseline RSS holds the model
    generator = torch.Generator().manual_seed(0)
    base = _rss_bytes()
    start = time.perf_counter()
    run(model, generator)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    params = sum(p.numel() for p in model.parameters())
    return {"seconds": seconds, "peak_rss": peak, "extra_peak": max(peak - base, 0), "params": params}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--width", type=int, default=3162, help="10 × 3162² ≈ 100M parameters")
    parser.add_argument("--scheme", default="xavier_uniform", choices=["xavier_uniform", "xavier_normal",
                                                                       "kaiming_uniform", "orthogonal"])
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.depth, args.width, args.scheme)))
        return

    results: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for r in range(args.rounds):
        for variant in VARIANTS if r % 2 == 0 else VARIANTS[::-1]:
            cmd = [sys.executable, __file__, "--worker", variant, "--depth", str(args.depth),
                   "--width", str(args.width), "--scheme", args.scheme]
            results[variant].append(json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout))

    def med(variant, key):
        return statistics.median(m[key] for m in results[variant])

    params = results["torch"][0]["params"]
    print(f"init of a {args.depth}-layer MLP, width {args.width} ({params / 1e6:.1f}M parameters), "
          f"{args.scheme}, {args.rounds} rounds, medians")
    print(f"{'':30}{'time (s)':>10}{'peak RSS (MB)':>16}{'extra over model (MB)':>24}"
          f"{'time ratio':>12}{'RSS ratio':>11}")
    for variant in VARIANTS:
        print(f"{LABELS[variant]:30}{med(variant, 'seconds'):10.3f}{med(variant, 'peak_rss') / 2**20:16.1f}"
              f"{med(variant, 'extra_peak') / 2**20:24.1f}"
              f"{med(variant, 'seconds') / med('torch', 'seconds'):12.3f}"
              f"{med(variant, 'peak_rss') / med('torch', 'peak_rss'):11.3f}")


if __name__ == "__main__":
    main()
