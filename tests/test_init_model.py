"""init_model: layer-aware, block-wise, atomic, reported."""

import json
import math

import pytest
import torch
from torch import nn

from signalprop import init_model
from signalprop.models import mlp

from .conftest import UNIFORM_KURTOSIS, var_tolerance


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _unchanged(model, snap):
    return all(torch.equal(v, snap[k]) for k, v in model.state_dict().items())


def test_mlp_xavier_matches_fans_and_report():
    model = mlp(5, 64, "tanh", in_features=32, out_features=10)
    report = init_model(model, generator=torch.Generator().manual_seed(0))
    first = report["0.weight"]
    assert first.shape == (64, 32) and (first.fans.fan_in, first.fans.fan_out) == (32, 64)
    assert first.target_std == pytest.approx(math.sqrt(2 / 96))
    a = math.sqrt(6 / 96)
    assert model[0].weight.abs().max() <= a
    assert torch.count_nonzero(model[0].bias) == 0
    assert report["0.bias"].scheme == "zeros"
    for p in report.params:
        if p.name.endswith("weight"):
            var = p.target_std**2
            n = math.prod(p.shape)
            assert abs(p.drawn_std**2 - var) < var_tolerance(n, var, UNIFORM_KURTOSIS)


def test_same_seed_same_model_and_global_rng_untouched():
    a, b = mlp(3, 16), mlp(3, 16)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    init_model(a, "kaiming_normal", generator=torch.Generator().manual_seed(9))
    init_model(b, "kaiming_normal", generator=torch.Generator().manual_seed(9))
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


def test_lstm_gates_are_filled_block_by_block():
    lstm = nn.LSTM(24, 32)
    init_model(lstm, "orthogonal", generator=torch.Generator().manual_seed(0))
    w = lstm.weight_hh_l0.detach().double()
    for block in w.chunk(4):
        assert torch.allclose(block.T @ block, torch.eye(32, dtype=torch.float64), atol=1e-5)
    # one orthogonal (128, 32) matrix would have blocks with B^T B far from I
    whole = nn.init.orthogonal_(torch.empty(128, 32, dtype=torch.float64), generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(whole[:32].T @ whole[:32], torch.eye(32, dtype=torch.float64), atol=0.1)


def test_fused_blocks_get_block_fans():
    lstm = nn.LSTM(200, 300)
    report = init_model(lstm, "xavier_uniform", generator=torch.Generator().manual_seed(0))
    entry = report["weight_ih_l0"]
    var = 2 / (200 + 300)  # per gate, not 2 / (200 + 1200)
    assert entry.target_std == pytest.approx(math.sqrt(var))
    for block in lstm.weight_ih_l0.detach().double().chunk(4):
        assert abs(block.var().item() - var) < var_tolerance(block.numel(), var, UNIFORM_KURTOSIS)
        assert block.abs().max() <= math.sqrt(3 * var) * (1 + 1e-6)
    mha = nn.MultiheadAttention(64, 4)
    report = init_model(mha, generator=torch.Generator().manual_seed(0))
    assert report["in_proj_weight"].fans.blocks == 3
    assert report["in_proj_weight"].target_std == pytest.approx(math.sqrt(2 / 128))
    assert report["out_proj.weight"].fans.rule == "nondynamicallyquantizablelinear"


def test_every_known_layer_type_initializes():
    model = nn.ModuleDict({
        "conv": nn.Conv2d(3, 8, 3, groups=1),
        "dw": nn.Conv2d(8, 8, 3, groups=8),
        "tconv": nn.ConvTranspose1d(4, 6, 3),
        "bil": nn.Bilinear(3, 4, 5),
        "gru": nn.GRU(4, 6, num_layers=2),
        "cell": nn.LSTMCell(3, 5),
        "emb": nn.Embedding(10, 4),
        "bn": nn.BatchNorm2d(8),
        "ln": nn.LayerNorm(4),
        "gn": nn.GroupNorm(2, 8),
    })
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(7.0)
    report = init_model(model, "lecun_normal", generator=torch.Generator().manual_seed(0))
    assert report.unknown == ()
    for name, p in model.named_parameters():
        entry = report[name]
        if name.startswith(("bn", "ln", "gn")):
            assert entry.scheme == ("ones" if name.endswith("weight") else "zeros")
        elif "bias" in name:
            assert torch.count_nonzero(p) == 0
        else:
            assert entry.scheme == "lecun_normal" and not torch.any(p == 7.0)
    assert report["bn.weight"].drawn_std == 0.0 and torch.all(model["bn"].weight == 1)
    assert report["emb.weight"].target_std == 1.0  # fan_in = 1: LeCun is N(0, 1) for a lookup


def test_normalization_keep():
    bn = nn.BatchNorm1d(4)
    with torch.no_grad():
        bn.weight.fill_(3.0)
    init_model(nn.Sequential(nn.Linear(4, 4), bn), normalization="keep")
    assert torch.all(bn.weight == 3.0)


class Scaler(nn.Module):
    def __init__(self):
        super().__init__()
        self.alpha = nn.Parameter(torch.full((4,), 0.3))
        self.fc = nn.Linear(4, 4)


def test_unknown_layers_are_reported_and_kept():
    model = Scaler()
    with pytest.warns(UserWarning, match="does not know unchanged: alpha"):
        report = init_model(model)
    assert report.unknown == ("alpha",)
    assert torch.all(model.alpha == 0.3)
    assert report["fc.weight"].scheme == "xavier_uniform"


def test_atomic_when_a_late_layer_is_invalid():
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4), nn.Embedding(5, 4))
    model[3].weight = nn.Parameter(torch.zeros(5, 4, dtype=torch.long), requires_grad=False)
    snap = _snapshot(model)
    with pytest.raises(TypeError, match="3.weight has dtype torch.int64"):
        init_model(model)
    assert _unchanged(model, snap)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"weight": "xavier"}, ValueError, "unknown weight 'xavier'; allowed: xavier_uniform"),
        ({"bias": "xavier_uniform"}, ValueError, "needs fans, but 0.bias has shape"),
        ({"weight": "constant"}, ValueError, "needs a value"),
        ({"weight": "normal:-1"}, ValueError, "std must be >= 0"),
        ({"weight": "normal:abc"}, ValueError, "must be a number"),
        ({"weight": "zeros:1"}, ValueError, "takes no argument"),
        ({"activation": "sparkle"}, ValueError, "allowed: identity, linear, relu"),
        ({"normalization": "drop"}, ValueError, "allowed: reset, keep"),
        ({"include": 3}, TypeError, "include must be"),
        ({"weight": 3}, TypeError, "weight must be a scheme name"),
    ],
)
def test_bad_arguments_leave_model_unchanged(kwargs, error, match):
    model = mlp(3, 8)
    snap = _snapshot(model)
    with pytest.raises(error, match=match):
        init_model(model, **kwargs)
    assert _unchanged(model, snap)


def test_dry_run_failure_leaves_model_unchanged(monkeypatch):
    from signalprop.init import _schemes

    model = mlp(3, 8)
    snap = _snapshot(model)
    broken = _schemes.parse_scheme("xavier_normal")

    def explode(*args):
        raise RuntimeError("kernel not implemented")

    with pytest.raises(RuntimeError, match="kernel not implemented"):
        init_model(model, weight=_schemes.replace(broken, fill=explode))
    assert _unchanged(model, snap)


def test_include_exclude_and_tied_weights():
    model = nn.Sequential(nn.Embedding(10, 6), nn.Linear(6, 6), nn.Linear(6, 10, bias=False))
    model[2].weight = model[0].weight  # tied input/output embedding
    before = model[1].weight.detach().clone()
    report = init_model(model, exclude=["1.*"], generator=torch.Generator().manual_seed(0))
    assert torch.equal(model[1].weight, before)
    assert report["1.weight"].scheme == "kept: excluded"
    assert [p.name for p in report.params].count("0.weight") == 1
    report = init_model(model, include=[nn.Linear], generator=torch.Generator().manual_seed(0))
    assert report["0.weight"].scheme == "kept: excluded"
    report = init_model(model, include=lambda name, m: name == "1.bias", bias="constant:0.5")
    assert torch.all(model[1].bias == 0.5) and report["1.weight"].kept


def test_activation_gain_applies():
    model = mlp(2, 200, "relu")
    report = init_model(model, "xavier_normal", activation="relu")
    assert report["0.weight"].target_std == pytest.approx(math.sqrt(2) * math.sqrt(2 / 400))
    report = init_model(model, "kaiming_normal", activation=nn.LeakyReLU(0.2))
    assert report["0.weight"].target_std == pytest.approx(math.sqrt(2 / 1.04 / 200))


def test_meta_model_and_lazy_modules():
    with torch.device("meta"):
        model = mlp(3, 8)
    report = init_model(model)
    assert report["0.weight"].drawn_std is None and report["0.weight"].target_std > 0
    with pytest.raises(ValueError, match="lazy module"):
        init_model(nn.Sequential(nn.LazyLinear(4)))


def test_report_table_and_json():
    report = init_model(nn.LSTM(3, 4), "orthogonal", generator=torch.Generator().manual_seed(0))
    text = report.table()
    assert text.splitlines()[0].split() == ["parameter", "shape", "fan_in", "fan_out", "blocks", "scheme",
                                            "target", "std", "drawn", "std"]
    assert "weight_hh_l0  16×4" in text
    data = json.loads(report.to_json())
    assert data["params"][0]["fans"]["blocks"] == 4
    assert data["params"][0]["target_std"] == pytest.approx(0.5)  # gain / sqrt(max(4, 3))


def test_half_precision_model():
    model = mlp(3, 32).to(torch.bfloat16)
    init_model(model, "orthogonal")
    w = model[0].weight.float()
    assert torch.allclose(w @ w.T, torch.eye(32), atol=0.05)


def test_large_weight_drawn_std_is_read_off_a_spread_sample():
    # 2048 × 2048 = 4M values, more than twice the 2**18-value sample: the sample holds 64 chunks
    # spread over the whole tensor, so a change in its last quarter shows, and the std matches the
    # target to the sample's own standard error.
    model = nn.Sequential(nn.Linear(2048, 2048))
    report = init_model(model, "xavier_normal", generator=torch.Generator().manual_seed(0))
    n, var = 2**18, report["0.weight"].target_std ** 2
    assert abs(report["0.weight"].drawn_std ** 2 - var) < var_tolerance(n, var, 3.0)
    model2 = nn.Sequential(nn.Linear(2048, 2048))
    with torch.no_grad():
        model2[0].weight.normal_(generator=torch.Generator().manual_seed(1))
        model2[0].weight[1536:].mul_(3.0)  # the last quarter drawn with 3× the std
    drawn = init_model(model2, "xavier_normal", include=["*.bias"])["0.weight"].drawn_std
    # the whole tensor's std is sqrt((3·1 + 9)/4) = sqrt(3)
    assert abs(drawn**2 - 3.0) < 0.05
