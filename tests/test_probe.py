"""signalprop.probe on real networks: exact statistics, the seed's claims, odd modules, and hygiene."""

import json
import math

import pytest
import torch
from torch import nn

from signalprop import compare, probe
from signalprop.models import cnn, lstm, mlp
from signalprop.probing import summary


def _x(batch, width, seed=0):
    return torch.randn(batch, width, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- against a hand computation
def test_statistics_match_retain_grad_by_hand():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 20), nn.Tanh(), nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 5))
    x = _x(64, 12)
    report = probe(model, x, generator=torch.Generator().manual_seed(7))

    outs, h = [], x
    for m in model:
        h = m(h)
        h.retain_grad()
        outs.append(h)
    h.backward(torch.randn(h.shape, generator=torch.Generator().manual_seed(7)))
    assert [r.name for r in report.rows] == ["0", "1", "2", "3", "4"]
    for row, out in zip(report.rows, outs):
        o, g = out.detach().double(), out.grad.double()
        assert row.fwd_mean == pytest.approx(o.mean().item(), rel=1e-6, abs=1e-9)
        assert row.fwd_var == pytest.approx(o.var(unbiased=False).item(), rel=1e-6)
        assert row.fwd_unit_var_min == pytest.approx(o.var(0, unbiased=False).min().item(), rel=1e-6)
        assert row.fwd_unit_var_max == pytest.approx(o.var(0, unbiased=False).max().item(), rel=1e-6)
        assert row.bwd_mean == pytest.approx(g.mean().item(), rel=1e-6, abs=1e-9)
        assert row.bwd_var == pytest.approx(g.var(unbiased=False).item(), rel=1e-6)
    relu = report.rows[3]
    assert relu.fwd_dead == pytest.approx((outs[3].detach().var(0) == 0).float().mean().item())
    for p, row in zip(model.parameters(), report.params):
        assert row.grad_norm == pytest.approx(p.grad.norm().item(), rel=1e-6)
        assert row.std == pytest.approx(p.detach().std(unbiased=False).item(), rel=1e-6)


def test_real_loss_and_channel_units():
    model = cnn(in_channels=2, channels=(4, 6), classes=3, image_size=6)
    x = torch.randn(8, 2, 6, 6, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    report = probe(model, x, target=target, loss_fn=nn.functional.cross_entropy)
    assert report.grad_source == "loss" and report.loss == pytest.approx(
        nn.functional.cross_entropy(model(x), target).item(), rel=1e-6)
    conv = report.rows[0]
    out = model[0](x).detach().double()
    assert conv.kind == "Conv2d" and conv.shape == (8, 4, 6, 6)
    per_channel = out.var(dim=(0, 2, 3), unbiased=False)  # units are channels
    assert conv.fwd_unit_var_min == pytest.approx(per_channel.min().item(), rel=1e-6)
    assert conv.fwd_unit_var_max == pytest.approx(per_channel.max().item(), rel=1e-6)


# ---------------------------------------------------------------- the seed's claims, 50 × 256
def _bwd(report):
    return [r.bwd_var for r in report.layers]


def _fwd(report):
    return [r.fwd_var for r in report.layers]


def test_xavier_keeps_gradients_where_normal_001_vanishes():
    x = _x(256, 256)
    xavier = probe(mlp(50, 256, "tanh", "xavier_uniform", generator=torch.Generator().manual_seed(0)), x)
    top = _bwd(xavier)[-1]
    assert top == pytest.approx(1.0, rel=0.1)  # standard-normal grad_output: 1 by construction
    assert all(top / 100 < v < top * 100 for v in _bwd(xavier))
    small = probe(mlp(50, 256, "tanh", "normal:0.01", generator=torch.Generator().manual_seed(0)), x)
    assert _bwd(small)[0] < 1e-20 and _fwd(small)[-1] < 1e-20
    assert [f.kind for f in small.verdict()] == ["vanishing activations", "vanishing gradients"]
    assert xavier.verdict() == []


def test_sigmoid_mean_and_vanishing_gradient_fixed_by_scaled_sigmoid():
    x = _x(256, 256)
    sig = probe(mlp(50, 256, "sigmoid", "xavier_uniform", generator=torch.Generator().manual_seed(0)), x)
    means = [r.fwd_mean for r in sig.rows if r.role == "activation"]
    assert all(abs(m - 0.5) < 0.05 for m in means)
    assert _bwd(sig)[0] < 1e-20
    kinds = [f.kind for f in sig.verdict()]
    assert "mean not zero" in kinds and "vanishing gradients" in kinds
    assert "scaled sigmoid" in str(next(f for f in sig.verdict() if f.kind == "mean not zero"))
    fixed = probe(mlp(50, 256, "scaled_sigmoid", "xavier_uniform", generator=torch.Generator().manual_seed(0)), x)
    assert all(abs(r.fwd_mean) < 0.05 for r in fixed.rows if r.role == "activation")
    assert min(_bwd(fixed)) > 1e-2 and fixed.verdict() == []


def test_residual_keeps_gradients_where_plain_loses_them():
    x = _x(256, 256)
    plain = probe(mlp(50, 256, "tanh", "torch_default"), x)
    residual = probe(mlp(50, 256, "tanh", "torch_default", residual=True), x)
    assert _bwd(plain)[0] < 1e-15
    assert _bwd(residual)[0] > 1e-2
    assert "vanishing gradients" in [f.kind for f in plain.verdict()]
    assert "vanishing gradients" not in [f.kind for f in residual.verdict()]


def test_relu_xavier_vanishes_relu_he_holds():
    x = _x(256, 256)
    xavier = probe(mlp(50, 256, "relu", "xavier_normal", generator=torch.Generator().manual_seed(0)), x)
    he = probe(mlp(50, 256, "relu", "kaiming_normal", generator=torch.Generator().manual_seed(0)), x)
    assert _fwd(xavier)[-1] / _fwd(xavier)[0] < 1e-10  # halves per layer: 2^-49
    assert 0.1 < _fwd(he)[-1] / _fwd(he)[0] < 10
    assert 0.01 < _bwd(he)[0] / _bwd(he)[-1] < 100
    assert "vanishing activations" in [f.kind for f in xavier.verdict()]
    assert not {"vanishing activations", "vanishing gradients"} & {f.kind for f in he.verdict()}


def test_probe_matches_theory_on_a_wide_tanh_net():
    x = _x(512, 1024)
    report = probe(mlp(20, 1024, "tanh", "xavier_normal", generator=torch.Generator().manual_seed(3)), x)
    pred = report.prediction
    assert pred is not None and len(pred.q) == len(report.layers)
    for row, q in zip(report.layers, pred.q):
        assert row.fwd_var == pytest.approx(q, rel=0.10)
    for row, g in zip(report.layers, pred.grad):
        assert row.bwd_var / report.layers[-1].bwd_var == pytest.approx(g, rel=0.10)


# ---------------------------------------------------------------- findings
def test_constant_init_leaves_identical_units():
    report = probe(mlp(6, 32, "tanh", "constant:0.05"), _x(64, 32))
    finding = next(f for f in report.verdict() if f.kind == "identical units")
    assert finding.layers[0] == "0" and "random init" in finding.fix
    assert all(r.fwd_identical == 1 for r in report.layers)


def test_nan_is_located_forward_and_backward():
    model = mlp(5, 16, "tanh", "xavier_uniform")
    with torch.no_grad():
        model[4].weight[3, 2] = float("nan")  # third Linear
    report = probe(model, _x(32, 16))
    kinds = {f.kind: f for f in report.verdict()}
    assert kinds["non-finite output"].layers == ("4",)
    # the top gradient is the (finite) noise; backward meets the NaN forward values first at the
    # Linear below the last tanh, whose derivative at NaN is NaN
    assert kinds["non-finite gradient"].layers == ("6",)
    assert report.rows[4].fwd_nonfinite == pytest.approx(1 / 16)


def test_saturation_and_dead_units():
    sat = probe(mlp(4, 64, "tanh", "normal:1.0", generator=torch.Generator().manual_seed(0)), _x(128, 64))
    assert "saturation" in [f.kind for f in sat.verdict()]
    model = mlp(3, 64, "relu", "kaiming_normal", generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model[0].bias[:40] = -100.0  # 40 of 64 units never fire
    dead = probe(model, _x(128, 64))
    assert dead.rows[1].fwd_dead == pytest.approx(40 / 64)
    assert "dead units" in [f.kind for f in dead.verdict()]


# ---------------------------------------------------------------- any module
def test_lstm_tuple_outputs():
    model = lstm(input_size=8, hidden_size=16, num_layers=2, out_features=3)
    report = probe(model, torch.randn(4, 7, 8, generator=torch.Generator().manual_seed(0)))
    rows = [r for r in report.rows if r.kind == "LSTM"]
    assert [r.output for r in rows] == ["[0]", "[1][0]", "[1][1]"]  # out, (h, c)
    assert rows[0].shape == (4, 7, 16) and math.isfinite(rows[0].bwd_var)
    assert math.isnan(rows[2].bwd_var)  # the cell state is not used downstream: no gradient reaches it


def test_transformer_encoder_and_attention():
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32, dropout=0.0, batch_first=True)
    model = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    report = probe(model, torch.randn(3, 5, 16, generator=torch.Generator().manual_seed(0)))
    attn = [r for r in report.rows if r.kind == "MultiheadAttention"]
    assert len(attn) == 2 and all(r.output == "[0]" for r in attn)  # weights are None (need_weights=False)
    assert all(math.isfinite(r.bwd_var) for r in report.rows if r.kind in ("Linear", "LayerNorm"))


def test_module_called_twice_and_inplace_relu():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)
            self.act = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.fc(self.act(self.fc(x)))

    model = Twice()
    x = _x(16, 8)
    report = probe(model, x)
    assert [r.label for r in report.rows] == ["fc", "act", "fc#1"]
    h1 = model.fc(x).detach()
    assert report.rows[0].fwd_var == pytest.approx(h1.double().var(unbiased=False).item(), rel=1e-6)
    assert report.rows[1].fwd_var == pytest.approx(h1.relu().double().var(unbiased=False).item(), rel=1e-6)
    # gradients through the in-place relu: ∂ℓ/∂(fc output) is masked by the relu
    a = x.clone().requires_grad_(False)
    h = model.fc(a)
    h.retain_grad()
    r = torch.relu(h)
    r.retain_grad()
    out = model.fc(r)
    out.backward(torch.randn(out.shape, generator=torch.Generator().manual_seed(0)))
    assert report.rows[0].bwd_var == pytest.approx(h.grad.double().var(unbiased=False).item(), rel=1e-6)
    assert report.rows[1].bwd_var == pytest.approx(r.grad.double().var(unbiased=False).item(), rel=1e-6)


def test_layer_selection():
    model = mlp(4, 8, "tanh")
    assert {r.kind for r in probe(model, _x(4, 8), layers=[nn.Linear]).rows} == {"Linear"}
    assert [r.name for r in probe(model, _x(4, 8), layers="2").rows] == ["2"]
    assert len(probe(model, _x(4, 8), layers=lambda name, m: isinstance(m, nn.Tanh)).rows) == 3


# ---------------------------------------------------------------- hygiene
def _state(model):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        [p.requires_grad for p in model.parameters()],
        [m.training for m in model.modules()],
    )


def _same(model, state):
    params, grads, requires, modes = state
    now = _state(model)
    return (all(torch.equal(v, params[k]) for k, v in now[0].items())
            and all((a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))
                    for a, b in zip(now[1], grads))
            and now[2] == requires and now[3] == modes)


def test_model_left_exactly_as_it_was():
    model = mlp(4, 16, "tanh", norm="batch")
    model.train()
    model[0].weight.grad = torch.full_like(model[0].weight, 3.0)  # an existing gradient, kept
    model[4].weight.requires_grad_(False)
    model[2].eval()
    before = _state(model)
    probe(model, _x(32, 16))
    assert _same(model, before)  # BatchNorm running stats restored too
    assert all(not m._forward_hooks for m in model.modules())


def test_hooks_removed_when_forward_raises():
    class Breaks(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)
            self.b = nn.Linear(4, 4)

        def forward(self, x):
            h = self.a(x)
            raise RuntimeError("halfway")

    model = Breaks()
    before = _state(model)
    with pytest.raises(RuntimeError, match="halfway"):
        probe(model, _x(2, 4))
    assert _same(model, before)
    assert all(not m._forward_hooks for m in model.modules())
    with pytest.raises(ValueError, match="loss_fn needs a target"):
        probe(nn.Linear(4, 4), _x(2, 4), loss_fn=nn.functional.mse_loss)


def test_frozen_model_and_plain_inputs():
    model = mlp(3, 8, "tanh")
    for p in model.parameters():
        p.requires_grad_(False)
    x = _x(4, 8)
    report = probe(model, x)
    assert not x.requires_grad and all(math.isfinite(r.bwd_var) for r in report.rows)
    assert all(not p.requires_grad and p.grad is None for p in model.parameters())


# ---------------------------------------------------------------- output
def test_table_json_plot_compare(tmp_path):
    a = probe(mlp(10, 32, "tanh", "xavier_uniform"), _x(64, 32), label="xavier")
    b = probe(mlp(10, 32, "tanh", "normal:0.01"), _x(64, 32), label="small")
    text = a.table(every=5)
    assert text.splitlines()[2].split()[0] == "0" and "10" in text.split()
    data = json.loads(a.to_json())
    assert data["label"] == "xavier" and len(data["rows"]) == 19 and data["prediction"]["depth"] == 10
    side = compare(a, b)
    assert "xavier: Var[h]" in side and "small: Var[h]" in side and len(side.splitlines()) == 12
    png = tmp_path / "p.png"
    a.plot(png, b)
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "ok:" in summary(a)
