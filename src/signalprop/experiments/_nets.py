"""Networks the experiments build and measure: seeded MLPs under any scheme (torch's default and LSUV
included), and the per-layer moments a probe reads off them."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ..init import lsuv_
from ..models import mlp
from ..probing import ProbeReport, probe

# Display names of the initializations compared throughout, by scheme.
INIT_LABELS = {
    "normal:0.01": "N(0, 0.01)",
    "standard": "standard U[±1/√n]",
    "torch_default": "PyTorch default",
    "xavier_normal": "Xavier normal",
    "xavier_uniform": "Xavier uniform",
    "kaiming_normal": "He normal",
    "lsuv": "LSUV",
}


def build_mlp(depth: int, width: int, activation, init: str, *, seed: int, in_features: int | None = None,
              out_features: int | None = None, lsuv_inputs: torch.Tensor | None = None, **options) -> nn.Sequential:
    """``signalprop.models.mlp`` under ``init``, deterministic in ``seed``.

    ``"torch_default"`` keeps torch's layer init (drawn from the global RNG, seeded here inside a fork);
    ``"lsuv"`` fits :func:`signalprop.init.lsuv_` on ``lsuv_inputs`` (default: a standard-normal batch).
    He/Kaiming schemes take the activation's computed gain (``signalprop.models.mlp`` does this).
    """
    generator = torch.Generator().manual_seed(seed)
    data_driven = init == "lsuv"
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = mlp(depth, width, activation, None if data_driven else init, in_features=in_features,
                    out_features=out_features, generator=generator, **options)
    if data_driven:
        if lsuv_inputs is None:
            lsuv_inputs = torch.randn(256, in_features or width, generator=generator)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # non-converged layers show in the moments
            lsuv_(model, lsuv_inputs, generator=generator)
    return model


def profile(report: ProbeReport) -> dict[str, list[float]]:
    """Per Linear layer: forward variance of its output and backward variance of ``∂ℓ/∂h`` (and means)."""
    layers = report.layers
    return {"fwd_var": [r.fwd_var for r in layers], "bwd_var": [r.bwd_var for r in layers],
            "fwd_mean": [r.fwd_mean for r in layers], "bwd_mean": [r.bwd_mean for r in layers]}


def probe_mlp(model: nn.Module, x: torch.Tensor, seed: int, label: str) -> ProbeReport:
    """A noise-driven probe (``grad_output ~ N(0, 1)`` at the top) with its own seeded generator."""
    return probe(model, x, generator=torch.Generator().manual_seed(seed), label=label)
