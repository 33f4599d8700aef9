"""signalprop.init.lsuv_: every layer within tolerance in call order, counted forwards, atomic, any model."""

import pytest
import torch
from torch import nn

from signalprop import probe
from signalprop.cli import main
from signalprop.init import lsuv_
from signalprop.models import cnn, mlp


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _linear_vars(model, x):
    """Each Linear's output variance on ``x``, measured independently by the probe."""
    return [r.fwd_var for r in probe(model, x).rows if r.kind == "Linear"]


@pytest.mark.parametrize("depth, activation", [(20, "relu"), (50, "tanh")])
def test_every_layer_ends_within_tolerance(depth, activation):
    model = mlp(depth, 256, activation, "xavier_uniform")
    x = _x(512, 256)
    report = lsuv_(model, x, generator=torch.Generator().manual_seed(1))
    assert [r.name for r in report.layers] == [str(2 * i) for i in range(depth)]
    assert all(r.converged for r in report.layers)
    measured = _linear_vars(model, x)
    assert len(measured) == depth
    assert all(abs(v - 1.0) < 0.02 for v in measured), max(abs(v - 1) for v in measured)
    assert [r.var_after for r in report.layers] == pytest.approx(measured, rel=1e-6)
    # counted work: two passes of the model, plus one layer forward per rescaling
    assert report.forward_passes == 2
    assert report.layer_forwards == 2 * depth + sum(r.iterations for r in report.layers)
    assert report.layer_forwards <= 3 * depth


class _Reversed(nn.Module):
    """Layers registered in the reverse of the order forward calls them."""

    def __init__(self, depth=12, width=64):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))

    def forward(self, x):
        for layer in reversed(self.layers):
            x = torch.relu(layer(x))
        return x


def test_registration_order_differs_from_call_order():
    model = _Reversed()
    x = _x(256, 64)
    report = lsuv_(model, x)
    assert [r.name for r in report.layers] == [f"layers.{i}" for i in reversed(range(12))]
    outputs = []
    handles = [m.register_forward_hook(lambda m, i, o: outputs.append((m, o.var(unbiased=False).item())))
               for m in model.layers]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    assert len(outputs) == 12 and all(abs(v - 1) < 0.02 for _, v in outputs)


def test_mean_correction_and_per_channel_on_a_cnn():
    model = cnn(3, (8, 16), 10, image_size=12)
    x = _x(64, 3, 12, 12)
    report = lsuv_(model, x, correct_mean=True, per_channel=True)
    assert all(r.converged for r in report.layers)
    with torch.no_grad():
        h = model[0](x)
        per_channel = h.var(dim=(0, 2, 3), unbiased=False)
        means = h.mean(dim=(0, 2, 3))
    assert (per_channel - 1).abs().max() < 0.02
    assert means.abs().max() < 1e-4
    assert [r.kind for r in report.layers] == ["Conv2d", "Conv2d", "Linear"]


def test_residual_lstm_and_transformer():
    residual = mlp(10, 64, "relu", "kaiming_normal", residual=True)
    report = lsuv_(residual, _x(128, 64))
    assert all(abs(r.var_after - 1) < 0.02 for r in report.layers)

    class Recurrent(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(8, 32, batch_first=True)
            self.head = nn.Linear(32, 4)

        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1])

    report = lsuv_(Recurrent(), _x(16, 5, 8))
    assert [r.name for r in report.layers] == ["head"] and report.layers[0].converged

    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), 2,
                                    enable_nested_tensor=False)
    before = torch.backends.mha.get_fastpath_enabled()
    report = lsuv_(encoder, _x(8, 10, 32))
    assert torch.backends.mha.get_fastpath_enabled() == before
    assert [r.kind for r in report.layers] == ["MultiheadAttention", "Linear", "Linear"] * 2
    assert all(r.converged for r in report.layers) and report.not_called == []


def test_a_layer_that_cannot_converge_is_reported_and_warned():
    model = nn.Sequential(nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 16))
    with torch.no_grad():
        model[2].bias.copy_(_x(16, seed=5) * 3)  # Var over units of the bias alone ≈ 9 > the target
    with pytest.warns(RuntimeWarning, match="did not reach Var = 1 within 5 rescalings: 2"):
        report = lsuv_(model, _x(64, 16), orthogonal=False, max_iter=5)
    assert report.not_converged == ["2"] and report.layers[1].iterations == 5


def test_atomic_on_error_and_modes_restored():
    class Breaks(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.bn, self.b = nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Linear(8, 8)

        def forward(self, x):
            x = self.b(self.bn(self.a(x)))
            raise RuntimeError("user forward fails after the layers ran")

    model = Breaks()
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError, match="user forward"):
        lsuv_(model, _x(32, 8))
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert model.training and model.bn.training
    assert all(not m._forward_hooks for m in model.modules())


def test_bad_arguments_leave_the_model_alone():
    model = mlp(3, 8, "tanh", "xavier_uniform")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for kwargs, message in (({"tol": 0}, "tol"), ({"target_var": -1}, "target_var"), ({"max_iter": 0}, "max_iter"),
                            ({"layers": nn.Tanh}, "cannot be fitted")):
        with pytest.raises(ValueError, match=message):
            lsuv_(model, _x(4, 8), **kwargs)
    with pytest.raises(ValueError, match="no Linear"):
        lsuv_(nn.Sequential(nn.Tanh()), _x(4, 8))
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_cli_lsuv_and_probe_init_lsuv(tmp_path, capsys):
    assert main(["lsuv", "--depth", "6", "--width", "32", "--batch", "64"]) == 0
    out = capsys.readouterr().out
    assert "6 layers to Var = 1 ± 0.02·target in 2 forward passes" in out
    user = tmp_path / "net.py"
    user.write_text("from torch import nn\n\ndef build():\n"
                    "    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 4))\n")
    assert main(["lsuv", "--model", f"{user}:build", "--input-shape", "3,8,8", "--json"]) == 0
    data = __import__("json").loads(capsys.readouterr().out)
    assert [r["kind"] for r in data["layers"]] == ["Conv2d", "Linear"]
    assert main(["lsuv", "--model", f"{user}:build"]) == 2
    assert "--input-shape" in capsys.readouterr().err
    assert main(["probe", "--activation", "relu", "--init", "lsuv", "--depth", "8", "--width", "32",
                 "--out", str(tmp_path)]) == 0
    assert "relu, lsuv" in capsys.readouterr().out
