"""Mean-field predictions against real networks: width 1024, depth 30, Xavier and He init.

A mean-field map predicts the *ensemble average* of each layer's variance. One ReLU network drifts from
it: Hanin & Rolnick (2018) give Var[log q^L] ≈ 5·Σ 1/n_l, i.e. a relative spread of
s = sqrt(exp(5·30/1024) − 1) ≈ 0.40 at the last layer. The measured value is the mean over K independent
networks, with K chosen so that the 10% tolerance is 3 standard errors: K = ⌈(3·s/0.10)²⌉.
Bounded activations (tanh, scaled sigmoid) concentrate: one network stays within ~2%, and a few suffice.
"""

import math

import pytest
import torch
from torch import nn

from signalprop import init_model, theory
from signalprop.models import mlp

DEPTH, WIDTH, BATCH, TOL, Z = 30, 1024, 32, 0.10, 3.0
RELU_SPREAD = math.sqrt(math.exp(5 * DEPTH / WIDTH) - 1)
RELU_NETS = math.ceil((Z * RELU_SPREAD / TOL) ** 2)
BOUNDED_NETS = 4

CASES = [
    ("tanh", "xavier_uniform", 1.0, BOUNDED_NETS),
    ("tanh", "kaiming_normal", 2.0, BOUNDED_NETS),
    ("scaled_sigmoid", "xavier_normal", 1.0, BOUNDED_NETS),
    ("scaled_sigmoid", "kaiming_uniform", 2.0, BOUNDED_NETS),
    ("relu", "xavier_uniform", 1.0, RELU_NETS),
    ("relu", "kaiming_normal", 2.0, RELU_NETS),
]


def _measure(act, scheme, nets, backward):
    generator = torch.Generator().manual_seed(2024)
    x = torch.randn(BATCH, WIDTH, generator=generator)
    q0 = x.double().pow(2).mean().item()
    with torch.device("meta"):
        net = mlp(DEPTH, WIDTH, act)
    net.to_empty(device="cpu")
    fwd = torch.zeros(DEPTH, dtype=torch.float64)
    bwd = torch.zeros(DEPTH, dtype=torch.float64)
    for _ in range(nets):
        # no activation given: He uses gain √2 (σ_w² = 2), Xavier σ_w² = 1 at equal widths
        init_model(net, scheme, generator=generator, measure=False)
        outputs = []
        h = x
        with torch.set_grad_enabled(backward):
            for module in net:
                h = module(h)
                if isinstance(module, nn.Linear):
                    if backward:
                        h.retain_grad()
                    outputs.append(h)
            if backward:
                h.backward(torch.randn(h.shape, generator=generator))
        fwd += torch.tensor([o.detach().double().pow(2).mean().item() for o in outputs])
        if backward:
            bwd += torch.tensor([o.grad.double().pow(2).mean().item() for o in outputs])
    return q0, fwd / nets, bwd / nets


@pytest.mark.parametrize("act, scheme, sigma_w2, nets", CASES, ids=[f"{a}-{s}" for a, s, _, _ in CASES])
def test_prediction_matches_wide_networks(act, scheme, sigma_w2, nets):
    backward = act != "relu"
    q0, fwd, bwd = _measure(act, scheme, nets, backward)
    pred = theory.predict(act, DEPTH, sigma_w2=sigma_w2, q0=q0)
    rel = (fwd / torch.tensor(pred.q, dtype=torch.float64) - 1).abs()
    assert rel.max().item() < TOL, f"forward off by {rel.max().item():.3f} at layer {rel.argmax().item() + 1}"
    if backward:
        measured = bwd / bwd[-1]
        rel = (measured / torch.tensor(pred.grad, dtype=torch.float64) - 1).abs()
        assert rel.max().item() < TOL, f"backward off by {rel.max().item():.3f} at layer {rel.argmax().item() + 1}"
