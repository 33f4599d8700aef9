"""lsuv_ against the reference ``lsuv`` package (0.3.0) on the same 20-layer, 256-wide ReLU MLP, same run.

Both start from the same model and batch (512 inputs) with the same target (unit variance). Counted
independently by a forward hook on every Linear: how many times a layer's forward ran. Checked
independently afterwards: each Linear's output variance on the batch.

    .venv/bin/python benchmarks/bench_lsuv.py [--repeats R]

The reference package prints as it goes; its output is silenced here.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import statistics
import time
import warnings

import torch
from torch import nn

from signalprop.init import lsuv_
from signalprop.models import mlp


def counted(model, fn):
    """Run ``fn()``; return (seconds, layer forwards, each Linear's output variance afterwards)."""
    calls = [0]
    handles = [m.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
               for m in model.modules() if isinstance(m, nn.Linear)]
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    for h in handles:
        h.remove()
    return seconds, calls[0]


def variances(model, x):
    out = []
    handles = [m.register_forward_hook(lambda m, i, o: out.append(o.var(unbiased=False).item()))
               for m in model.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    try:
        from lsuv import lsuv_with_singlebatch
    except ImportError:
        raise SystemExit("this benchmark needs the reference package: pip install lsuv==0.3.0")
    torch.manual_seed(0)
    base = mlp(20, 256, "relu", None)
    x = torch.randn(512, 256, generator=torch.Generator().manual_seed(0))
    results = {"lsuv 0.3.0": [], "signalprop lsuv_": []}
    last = {}
    for r in range(args.repeats):
        runs = [("lsuv 0.3.0", lambda m: (lambda: _quiet(lambda: lsuv_with_singlebatch(m, x, verbose=False)))),
                ("signalprop lsuv_", lambda m: (lambda: lsuv_(m, x, tol=0.02, generator=torch.Generator().manual_seed(0))))]
        if r % 2:
            runs.reverse()
        for name, make in runs:
            model = copy.deepcopy(base)
            seconds, calls = counted(model, make(model))
            results[name].append(seconds)
            last[name] = (calls, variances(model, x))
    print(f"20-layer, 256-wide ReLU MLP, 512 inputs, target Var = 1; {args.repeats} repeats, median time")
    print(f"{'':18} {'time (s)':>9} {'layer forwards':>15} {'Var[h] after (min…max)':>24} {'worst |Var−1|':>14}")
    for name, times in results.items():
        calls, v = last[name]
        print(f"{name:18} {statistics.median(times):9.3f} {calls:15d} {min(v):11.4f}…{max(v):.4f} "
              f"{max(abs(a - 1) for a in v):14.4f}")
    ref, ours = (statistics.median(results[k]) for k in results)
    print(f"time ratio ours/reference: {ours / ref:.3f}; layer forwards ratio: "
          f"{last['signalprop lsuv_'][0] / last['lsuv 0.3.0'][0]:.3f}")
    call_order_check(x)


class Reversed(nn.Module):
    """The same MLP with its Linear layers registered in the reverse of the order forward calls them."""

    def __init__(self, depth=20, width=256):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))

    def forward(self, x):
        for i, layer in enumerate(reversed(self.layers)):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


def call_order_check(x) -> None:
    from lsuv import lsuv_with_singlebatch

    torch.manual_seed(0)
    base = Reversed()
    print("\nlayers registered in the reverse of their call order:")
    for name, fit in (("lsuv 0.3.0", lambda m: _quiet(lambda: lsuv_with_singlebatch(m, x, verbose=False))),
                      ("signalprop lsuv_", lambda m: lsuv_(m, x))):
        model = copy.deepcopy(base)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit(model)
        v = variances(model, x)
        outside = sum(abs(a ** 0.5 - 1) > 0.1 for a in v)
        print(f"{name:18} layers with std outside 1 ± 0.1: {outside:2d} of {len(v)}; largest Var[h] {max(v):.3g}")


def _quiet(fn):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn()


if __name__ == "__main__":
    main()
