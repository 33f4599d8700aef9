"""Time to compute every registered activation's gains (forward, centred, backward) by quadrature.

Baseline in the same run: one forward pass of a 256×256 Linear + tanh on a batch of 256, so the figure
can be read on any machine as "gains for all activations cost N small forward passes".

    ./dev.sh bench            # or: .venv/bin/python benchmarks/bench_gain.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from signalprop import activations as A


def _all_gains(criteria: tuple[str, ...]) -> None:
    for name in A.NAMES:
        act = A.get(name)
        for criterion in criteria:
            A.gain(act, criterion)


def _time(fn, repeats: int) -> float:
    fn()  # warm up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    layer = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.Tanh())
    x = torch.randn(256, 256)

    def baseline():
        with torch.no_grad():
            layer(x)

    base = _time(baseline, args.repeats)
    forward = _time(lambda: _all_gains(("forward",)), args.repeats)
    three = _time(lambda: _all_gains(("forward", "centred", "backward")), args.repeats)
    n = len(A.NAMES)
    print(f"gains of all {n} registered activations, median of {args.repeats}")
    print(f"{'forward gain only':32}{forward * 1e3:9.1f} ms{forward / base:10.0f}× baseline")
    print(f"{'forward + centred + backward':32}{three * 1e3:9.1f} ms{three / base:10.0f}× baseline")
    print(f"{'baseline (Linear 256 + tanh)':32}{base * 1e3:9.3f} ms")


if __name__ == "__main__":
    main()
