"""signalprop.clip: bit-identical to torch.nn.utils, AGC against a hand-written reference, idempotence."""

import math

import pytest
import torch
from torch import nn

from signalprop import clip


def _model_with_grads(seed=0, scale=10.0, dtype_mix=False):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(7, 5), nn.Tanh(), nn.Linear(5, 3))
    if dtype_mix:
        model[2].double()
    g = torch.Generator().manual_seed(seed + 1)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype) * scale
    return model


def _grads(model):
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("foreach", [None, True, False])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
@pytest.mark.parametrize("dtype_mix", [False, True])
def test_clip_grad_norm_bit_identical_to_torch(norm_type, foreach, max_norm, dtype_mix):
    ours, theirs = _model_with_grads(dtype_mix=dtype_mix), _model_with_grads(dtype_mix=dtype_mix)
    got = clip.clip_grad_norm_(ours.parameters(), max_norm, norm_type, foreach=foreach)
    want = torch.nn.utils.clip_grad_norm_(theirs.parameters(), max_norm, norm_type, foreach=foreach)
    assert torch.equal(got, want)
    for a, b in zip(_grads(ours), _grads(theirs)):
        assert torch.equal(a, b)


def test_clip_grad_norm_takes_a_module_and_an_iterator_alike():
    ours, theirs = _model_with_grads(), _model_with_grads()
    assert torch.equal(clip.clip_grad_norm_(ours, 0.5), torch.nn.utils.clip_grad_norm_(theirs.parameters(), 0.5))
    assert all(torch.equal(a, b) for a, b in zip(_grads(ours), _grads(theirs)))
    ours, theirs = _model_with_grads(scale=0.1), _model_with_grads(scale=0.1)
    got = clip.adaptive_clip_grad_(iter(list(ours.parameters())), 0.01)  # an iterator is read once
    want = clip.adaptive_clip_grad_(list(theirs.parameters()), 0.01)
    assert len(got.parameters) == 4 and torch.equal(got.factor, want.factor)


@pytest.mark.parametrize("foreach", [None, False])
def test_clip_grad_value_bit_identical_and_report(foreach):
    ours, theirs = _model_with_grads(), _model_with_grads()
    before = _grads(ours)
    report = clip.clip_grad_value_(ours.parameters(), 3.0, foreach=foreach, report=True)
    assert torch.nn.utils.clip_grad_value_(theirs.parameters(), 3.0, foreach=foreach) is None
    for a, b in zip(_grads(ours), _grads(theirs)):
        assert torch.equal(a, b)
    for g, factor, fraction in zip(before, report.factor, report.fraction):
        assert factor.item() == pytest.approx(min(1.0, 3.0 / g.abs().max().item()), rel=1e-6)
        assert fraction.item() == pytest.approx((g.abs() > 3.0).float().mean().item())
    assert report.clipped.tolist() == [g.abs().max().item() > 3.0 for g in before]


def test_clip_grad_norm_report_and_nonfinite():
    model = _model_with_grads()
    norm = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).norm()
    report = clip.clip_grad_norm_(model.parameters(), 1.0, report=True)
    assert report.total_norm.item() == pytest.approx(norm.item(), rel=1e-6)
    assert torch.allclose(report.factor, torch.full((4,), 1.0 / (norm.item() + 1e-6)))
    assert report.clipped.all() and report.fraction.tolist() == [1.0] * 4
    after = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).norm()
    assert after.item() == pytest.approx(1.0, rel=1e-5)
    model.parameters().__next__().grad[0, 0] = math.nan
    with pytest.raises(RuntimeError, match="non-finite"):
        clip.clip_grad_norm_(model.parameters(), 1.0, error_if_nonfinite=True)


def test_clip_grad_norm_is_idempotent_over_many_steps():
    """Once clipped, further clips change nothing beyond the rounding of the norm (as in torch)."""
    model = _model_with_grads()
    clip.clip_grad_norm_(model.parameters(), 1.0)
    once = _grads(model)
    for _ in range(100):
        norm = clip.clip_grad_norm_(model.parameters(), 1.0)
        assert norm.item() <= 1.0 + 1e-6
    for a, b in zip(once, _grads(model)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=0)


# ---------------------------------------------------------------- adaptive clipping
def _agc_reference(weight_units, grad_units, clipping, eps):
    """Plain-Python AGC over explicit lists of units (each a flat tensor): returns the new unit grads."""
    out = []
    for w, g in zip(weight_units, grad_units):
        limit = clipping * max(w.norm().item(), eps)
        norm = g.norm().item()
        out.append(g * (limit / norm) if norm > limit else g.clone())
    return out


def _units_out_first(t):
    return [t[i].reshape(-1) for i in range(t.shape[0])] if t.dim() > 1 else [t.reshape(-1)]


def _units_conv_transpose(t, groups):
    """Output channel j of group k of a ConvTranspose weight (in, out/g, k…): rows k·in/g … (k+1)·in/g."""
    in_per = t.shape[0] // groups
    return [t[k * in_per:(k + 1) * in_per, j].reshape(-1) for k in range(groups) for j in range(t.shape[1])]


def _set_grads(model, scale, seed=3):
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=g) * scale * torch.rand(p.shape[0], *[1] * (p.dim() - 1), generator=g)


@pytest.mark.parametrize("scale", [1e-3, 0.05, 10.0])
def test_agc_matches_reference_on_linear_conv_and_grouped_conv_transpose(scale):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(4, 6, 3, groups=2), nn.ConvTranspose2d(6, 4, 3, groups=2), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 5))
    model(torch.zeros(1, 4, 6, 6))
    _set_grads(model, scale)
    before = {n: p.grad.clone() for n, p in model.named_parameters()}
    report = clip.adaptive_clip_grad_(model, clipping=0.02, eps=1e-3)
    for name, p in model.named_parameters():
        transposed = name == "1.weight"
        split = (lambda t: _units_conv_transpose(t, 2)) if transposed else _units_out_first
        want = _agc_reference(split(p.detach()), split(before[name]), 0.02, 1e-3)
        for got_unit, want_unit in zip(split(p.grad), want):
            torch.testing.assert_close(got_unit, want_unit, rtol=1e-6, atol=0)
    assert len(report.parameters) == 6 and report.factor.shape == (6,)
    if scale == 1e-3:
        assert not report.clipped.any()
    if scale == 10.0:
        assert report.clipped.all() and (report.fraction == 1).all()


def test_agc_layout_matters_for_conv_transpose():
    """A bare tensor list is taken out-first; the module knows ConvTranspose is in-first: the results differ."""
    torch.manual_seed(0)
    layer = nn.ConvTranspose2d(3, 5, 2)
    _set_grads(layer, 1.0)
    grad = layer.weight.grad.clone()
    clip.adaptive_clip_grad_(layer, clipping=0.01)
    by_module = layer.weight.grad.clone()
    layer.weight.grad = grad.clone()
    clip.adaptive_clip_grad_([layer.weight], clipping=0.01)
    by_tensor = layer.weight.grad
    want = _agc_reference(_units_conv_transpose(layer.weight.detach(), 1), _units_conv_transpose(grad, 1), 0.01, 1e-3)
    for got_unit, want_unit in zip(_units_conv_transpose(by_module, 1), want):
        torch.testing.assert_close(got_unit, want_unit, rtol=1e-6, atol=0)
    assert not torch.allclose(by_module, by_tensor)


def test_agc_exclude_leaves_the_classifier_and_is_idempotent():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    _set_grads(model, 10.0)
    head = [model[2].weight.grad.clone(), model[2].bias.grad.clone()]
    report = clip.adaptive_clip_grad_(model, exclude="2")
    assert len(report.parameters) == 2
    assert torch.equal(model[2].weight.grad, head[0]) and torch.equal(model[2].bias.grad, head[1])
    once = model[0].weight.grad.clone()
    for _ in range(100):
        clip.adaptive_clip_grad_(model, exclude="2")
    torch.testing.assert_close(model[0].weight.grad, once, rtol=1e-5, atol=0)
    ratio = model[0].weight.grad.norm(dim=1) / model[0].weight.detach().norm(dim=1).clamp(min=1e-3)
    assert (ratio <= 0.01 * (1 + 1e-5)).all()


def test_bad_arguments():
    model = _model_with_grads()
    with pytest.raises(ValueError, match="clipping > 0"):
        clip.adaptive_clip_grad_(model, clipping=0)
    with pytest.raises(ValueError, match="needs a module"):
        clip.adaptive_clip_grad_(list(model.parameters()), exclude="2")
    with pytest.raises(ValueError, match="layout"):
        clip.unit_norms(torch.ones(2, 2), layout="sideways")
