"""signalprop.Monitor: exact moments, one host transfer per logged step, alerts that name the layer and step,
sinks that survive a kill, and hygiene."""

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from torch import nn

from signalprop import Monitor
from signalprop.cli import main
from signalprop.models import mlp
from signalprop.monitor import CsvSink, MemorySink, NonFiniteError, TensorBoardSink, Thresholds, read_log


def _data(batch=32, width=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, width, generator=g), torch.randn(batch, width, generator=g)


def _keep(store, key=None):
    """A forward hook that keeps the output (with its gradient) in ``store``; returns None, so the output stands."""
    def hook(module, inputs, output):
        output.retain_grad()
        if key is None:
            store.append(output)
        else:
            store[key] = output

    return hook


def _pooled(tensors):
    flat = torch.cat([t.detach().double().reshape(-1) for t in tensors])
    return flat.mean().item(), flat.var(unbiased=False).item()


# ---------------------------------------------------------------- against a hand computation
def test_moments_norms_and_loss_match_a_hand_computation():
    torch.manual_seed(0)
    model = mlp(3, 16, "tanh", "xavier_normal")
    x, y = _data()
    outputs = {}
    handles = [m.register_forward_hook(_keep(outputs, n)) for n, m in model.named_children() if isinstance(m, nn.Linear)]
    sink = MemorySink()
    with Monitor(model, sinks=[sink], summary=False) as monitor:
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        record = monitor.step(loss)
    for h in handles:
        h.remove()
    assert sink.records == [record] and record["step"] == 0
    assert [r["name"] for r in record["layers"]] == ["0", "2", "4"]
    for row in record["layers"]:
        h = outputs[row["name"]]
        mean, var = _pooled([h])
        gmean, gvar = _pooled([h.grad])
        assert row["fwd_mean"] == pytest.approx(mean, rel=1e-5, abs=1e-7)
        assert row["fwd_var"] == pytest.approx(var, rel=1e-5)
        assert row["bwd_mean"] == pytest.approx(gmean, rel=1e-4, abs=1e-9)
        assert row["bwd_var"] == pytest.approx(gvar, rel=1e-5)
        assert row["fwd_nonfinite"] is False and row["bwd_nonfinite"] is False
    # backward reaches the last layer first
    assert [r["backward_rank"] for r in record["layers"]] == [2, 1, 0]
    for p_row, (name, p) in zip(record["params"], model.named_parameters()):
        assert p_row["name"] == name
        assert p_row["norm"] == pytest.approx(p.detach().norm().item(), rel=1e-6)
        assert p_row["grad_norm"] == pytest.approx(p.grad.norm().item(), rel=1e-6)
    total = math.sqrt(sum(p.grad.norm().item() ** 2 for p in model.parameters()))
    assert record["grad_norm"] == pytest.approx(total, rel=1e-6)
    assert record["loss"] == pytest.approx(loss.item(), rel=1e-6)
    assert record["alerts"] == []


def test_gradient_accumulation_pools_micro_batches_and_reads_the_summed_grad():
    torch.manual_seed(0)
    model = mlp(2, 8, "relu", "kaiming_normal")
    batches = [_data(8, 8, seed) for seed in (1, 2, 3)]
    outputs, grads = [], []
    layer = model[0]
    handle = layer.register_forward_hook(_keep(outputs))
    with Monitor(model, summary=False) as monitor:
        for x, y in batches:
            nn.functional.mse_loss(model(x), y).backward()
        record = monitor.step()
    handle.remove()
    row = record["layers"][0]
    mean, var = _pooled(outputs)
    gmean, gvar = _pooled([o.grad for o in outputs])
    assert row["fwd_mean"] == pytest.approx(mean, rel=1e-5, abs=1e-7)
    assert row["fwd_var"] == pytest.approx(var, rel=1e-5)
    assert row["bwd_var"] == pytest.approx(gvar, rel=1e-5)
    assert record["params"][0]["grad_norm"] == pytest.approx(layer.weight.grad.norm().item(), rel=1e-6)
    # the relu row holds the fraction of units that are 0 for every sample of all three micro-batches' calls
    relu = next(r for r in record["layers"] if r["kind"] == "ReLU")
    assert relu["fwd_var"] is None and 0.0 <= relu["dead"] <= 1.0


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_dead_fraction_counts_exactly_the_channels_and_units_that_are_zero_for_the_whole_batch(memory_format):
    torch.manual_seed(0)
    conv, linear = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8, 10)
    model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), linear, nn.ReLU())
    with torch.no_grad():
        conv.bias.fill_(1e3)
        conv.bias[[1, 4, 6]] = -1e3  # three of eight channels dead everywhere, the others alive
        linear.bias.fill_(1e3)
        linear.bias[[0, 9]] = -1e5  # two of ten units dead
    x = torch.randn(4, 3, 6, 6).contiguous(memory_format=memory_format)
    model = model.to(memory_format=memory_format)
    with Monitor(model, summary=False) as monitor:
        model(x).sum().backward()
        record = monitor.step()
    dead = {r["name"]: r["dead"] for r in record["layers"] if r["kind"] == "ReLU"}
    assert dead == {"1": 3 / 8, "5": 2 / 10}


def test_update_ratio_matches_the_sgd_step():
    torch.manual_seed(0)
    model = mlp(2, 8, "tanh", "xavier_uniform")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _data(16, 8)
    records, before = [], []
    with Monitor(model, update_every=2, summary=False) as monitor:
        for _ in range(3):
            nn.functional.mse_loss(model(x), y).backward()
            before.append([(p.detach().clone(), p.grad.clone()) for p in model.parameters()])
            records.append(monitor.step())
            opt.step()
            opt.zero_grad()
    assert all(p["update_ratio"] is None for p in records[0]["params"] + records[1]["params"])
    # step 2's record holds the update made by the optimizer step after step() 1, Δw = −lr·g₁, against
    # the weights it produced (those of step 2, whose norms the same record holds)
    expected = [(0.1 * g).norm().item() / w.norm().item() for (_, g), (w, _) in zip(before[1], before[2])]
    got = [p["update_ratio"] for p in records[2]["params"]]
    assert got == pytest.approx(expected, rel=1e-4)


def test_every_k_logs_only_every_kth_step():
    model = mlp(2, 8, "tanh", "xavier_uniform")
    x, y = _data(4, 8)
    sink = MemorySink()
    with Monitor(model, every=3, sinks=[sink], summary=False) as monitor:
        results = []
        for _ in range(7):
            nn.functional.mse_loss(model(x), y).backward()
            results.append(monitor.step())
            model.zero_grad()
    assert [r["step"] for r in sink.records] == [0, 3, 6]
    assert [r is not None for r in results] == [True, False, False, True, False, False, True]


# ---------------------------------------------------------------- the hot path
def test_one_host_transfer_per_logged_step(monkeypatch):
    """Count every way a tensor reaches the host during 10 training steps, with and without the monitor."""
    torch.manual_seed(0)
    model = mlp(6, 32, "relu", "kaiming_normal")
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x, y = _data(16, 32)
    calls = []
    for name in ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__", "__index__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)

    def train(monitor=None):
        for _ in range(10):
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            if monitor is not None:
                monitor.step(loss)
            opt.step()
            opt.zero_grad()

    train()
    baseline = list(calls)
    calls.clear()
    with Monitor(model, sinks=[MemorySink()], clip="norm:1.0", update_every=3, summary=False) as monitor:
        train(monitor)
    assert sorted(calls) == sorted(baseline + ["tolist"] * 10)


# ---------------------------------------------------------------- alerts
def _exploding_model():
    """ReLU MLP whose weights are 1.6× He's: each layer multiplies the forward variance by ~2.6."""
    torch.manual_seed(0)
    model = mlp(5, 32, "relu", "kaiming_normal")
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                m.weight.mul_(1.6)
    return model


def _train(model, steps, monitor=None, on_step=None):
    opt = torch.optim.SGD(model.parameters(), lr=0.5)  # too high: Var[h] passes 1e6 at step 1, NaN by step 4
    x, y = _data(32, 32)
    for _ in range(steps):
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        if monitor is not None:
            monitor.step(loss)
        if on_step is not None:
            on_step()
        opt.step()
        opt.zero_grad()


def test_exploding_run_is_flagged_at_the_right_step_and_layer():
    # reference, with plain hooks and no monitor: per step, each Linear's output variance
    model = _exploding_model()
    history, outs = [], []
    handles = [m.register_forward_hook(lambda m, i, o: outs.append(o.detach().var(unbiased=False).item()))
               for m in model if isinstance(m, nn.Linear)]

    def close_step():
        history.append(list(outs))
        outs.clear()

    _train(model, 12, on_step=close_step)
    for h in handles:
        h.remove()
    threshold = 1e4
    step, layer = next((s, i) for s, v in enumerate(history) for i, var in enumerate(v) if var > threshold)
    assert 0 < step < 12, "the run must start below the threshold and blow up later"

    model = _exploding_model()
    with Monitor(model, thresholds=Thresholds(fwd_var_high=threshold), summary=False) as monitor:
        _train(model, 12, monitor)
    flagged = [a for a in monitor.alerts if a["kind"] == "exploding_activations"]
    assert flagged, "no exploding alert"
    assert flagged[0]["step"] == step
    assert flagged[0]["layer"] == str(2 * layer)  # Linear layers sit at 0, 2, 4, … of the Sequential
    assert f"step {step}:" in flagged[0]["message"]


def test_clipping_keeps_the_exploding_run_finite():
    unclipped_model = _exploding_model()
    with Monitor(unclipped_model, summary=False) as unclipped:
        _train(unclipped_model, 40, unclipped)
    assert any(a["kind"] == "nonfinite" for a in unclipped.alerts)
    clipped_model = _exploding_model()
    sink = MemorySink()
    with Monitor(clipped_model, clip="norm:1.0", sinks=[sink], summary=False) as clipped:
        _train(clipped_model, 40, clipped)
    assert not any(a["kind"] == "nonfinite" for a in clipped.alerts)
    assert sink.records[0]["clip_factor"] < 1  # the clip did act
    assert all(math.isfinite(r["loss"]) for r in sink.records)


class _NaNForward(nn.Module):
    def forward(self, x):
        return x * torch.tensor(float("nan"))


class _NaNGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("nan")


class _NaNBackward(nn.Module):
    def forward(self, x):
        return _NaNGrad.apply(x)


@pytest.mark.parametrize("k", [1, 3])
def test_nan_in_forward_of_layer_k_is_localized(k):
    torch.manual_seed(0)
    layers = [nn.Linear(8, 8) for _ in range(5)]
    model = nn.Sequential(*[nn.Sequential(lin, nn.Tanh()) for lin in layers])
    model[k][1] = nn.Sequential(_NaNForward(), nn.Tanh())  # NaN right after Linear k
    x, y = _data(4, 8)
    with Monitor(model, raise_on_nonfinite=True, summary=False) as monitor:
        nn.functional.mse_loss(model(x), y).backward()
        with pytest.raises(NonFiniteError) as err:
            monitor.step()
    alert = err.value.alert
    assert alert["where"] == "forward" and alert["layer"] == f"{k + 1}.0" and alert["step"] == 0


@pytest.mark.parametrize("k", [1, 3])
def test_nan_in_backward_of_layer_k_is_localized(k):
    """Forward is clean; backward turns NaN inside block k, so the first output gradient to hold NaN in
    backward order is that of Linear k (its output feeds the poisoned function)."""
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Sequential(nn.Linear(8, 8), nn.Tanh()) for _ in range(5)])
    model[k][1] = nn.Sequential(_NaNBackward(), nn.Tanh())
    x, y = _data(4, 8)
    with Monitor(model, summary=False) as monitor:
        nn.functional.mse_loss(model(x), y).backward()
        record = monitor.step()
    nonfinite = [a for a in record["alerts"] if a["kind"] == "nonfinite"]
    assert len(nonfinite) == 1
    assert nonfinite[0]["where"] == "backward" and nonfinite[0]["layer"] == f"{k}.0"
    rows = {r["name"]: r for r in record["layers"]}
    assert not any(r["fwd_nonfinite"] for r in rows.values())
    assert rows[f"{k + 1}.0"]["bwd_nonfinite"] is False


def test_vanishing_gradients_are_named_in_a_deep_sigmoid_net():
    torch.manual_seed(0)
    model = mlp(30, 64, "sigmoid", "xavier_uniform")
    x, y = _data(64, 64)
    with Monitor(model, summary=False) as monitor:
        nn.functional.mse_loss(model(x), y).backward()
        record = monitor.step()
    alert = next(a for a in record["alerts"] if a["kind"] == "vanishing_gradients")
    names = [r["name"] for r in record["layers"]]
    assert alert["layer"] in names and names.index(alert["layer"]) < len(names) - 1


# ---------------------------------------------------------------- sinks
def test_jsonl_log_survives_sigkill(tmp_path):
    log = tmp_path / "train.jsonl"
    script = textwrap.dedent(f"""
        import torch
        from torch import nn
        from signalprop import Monitor
        from signalprop.models import mlp
        torch.manual_seed(0)
        model = mlp(4, 64, "tanh", "xavier_uniform")
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        x, y = torch.randn(64, 64), torch.randn(64, 64)
        with Monitor(model, sinks=[{str(log)!r}]) as monitor:
            while True:
                nn.functional.mse_loss(model(x), y).backward()
                monitor.step()
                opt.step()
                opt.zero_grad()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if log.exists() and log.read_text().count("\n") >= 20:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    records = read_log(log)
    assert len(records) >= 20
    assert [r["step"] for r in records] == list(range(len(records)))
    # a record cut off mid-line (as a kill can leave it) is skipped, the rest still read
    with open(log, "a") as f:
        f.write('{"step": 999, "layers": [{"na')
    assert read_log(log) == records


def test_read_log_rejects_a_broken_line_in_the_middle(tmp_path):
    log = tmp_path / "bad.jsonl"
    log.write_text('{"step": 0, "layers": []}\nnot json\n{"step": 2, "layers": []}\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        read_log(log)


def test_csv_and_tensorboard_sinks(tmp_path):
    pytest.importorskip("tensorboard")
    torch.manual_seed(0)
    model = mlp(3, 16, "tanh", "xavier_uniform")
    x, y = _data(32, 16)
    tb = TensorBoardSink(tmp_path / "tb", bins=16)
    memory = MemorySink()
    with Monitor(model, sinks=[CsvSink(tmp_path / "log.csv"), tb, memory], summary=False) as monitor:
        for _ in range(2):
            out = model(x)
            nn.functional.mse_loss(out, y).backward()
            monitor.step()
            model.zero_grad()
    lines = (tmp_path / "log.csv").read_text().splitlines()
    assert lines[0] == "step,scope,name,metric,value"
    assert "1,layer,4,fwd_var," in "\n".join(lines)
    hist = memory.records[-1]["histograms"]["4"]
    assert hist["num"] == out.numel() and len(hist["bucket_counts"]) == 16
    ref = torch.histc(out.detach(), bins=16, min=hist["min"], max=hist["max"])
    assert sum(abs(a - b) for a, b in zip(hist["bucket_counts"], ref.tolist())) <= 2  # edge rounding
    assert any(f.name.startswith("events.out.tfevents") for f in (tmp_path / "tb").iterdir())


# ---------------------------------------------------------------- hygiene
def test_hooks_removed_when_the_loop_raises_and_model_left_as_before():
    torch.manual_seed(0)
    model = mlp(3, 8, "relu", "kaiming_normal")
    model.eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = _data(4, 8)
    with pytest.raises(KeyError):
        with Monitor(model, summary=False) as monitor:
            nn.functional.mse_loss(model(x), y).backward()
            monitor.step()
            raise KeyError("user code")
    assert all(not m._forward_hooks for m in model.modules())
    assert all(not getattr(p, "_post_accumulate_grad_hooks", None) for p in model.parameters())
    assert not model.training
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    with pytest.raises(RuntimeError, match="with"):
        monitor.step()


def test_bad_arguments():
    model = mlp(2, 4, "tanh", "xavier_uniform")
    with pytest.raises(ValueError, match="every"):
        Monitor(model, every=0)
    with pytest.raises(ValueError, match="clip"):
        Monitor(model, clip="norm:-1")
    with pytest.raises(ValueError, match="suffix"):
        Monitor(model, sinks=["log.txt"])
    with pytest.raises(TypeError, match="nn.Module"):
        Monitor("model")


def test_watch_cli_summary_and_plots(tmp_path, capsys):
    log = tmp_path / "run.jsonl"
    torch.manual_seed(0)
    model = mlp(4, 16, "tanh", "xavier_uniform")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _data(32, 16)
    with Monitor(model, sinks=[log], summary=False) as monitor:
        for _ in range(6):
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            monitor.step(loss)
            opt.step()
            opt.zero_grad()
    assert main(["watch", str(log), "--out", str(tmp_path), "--steps", "0,-1"]) == 0
    out = capsys.readouterr().out
    assert "6 logged steps, 0…5" in out and "alerts: none" in out and "max Var[h]" in out
    assert (tmp_path / "watch_grad_norms.png").stat().st_size > 0
    assert (tmp_path / "watch_depth.png").stat().st_size > 0
    assert main(["watch", str(tmp_path / "missing.jsonl")]) == 2
    assert main(["watch", str(log), "--steps", "99", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "step 99 is not in the log" in err
    assert json.loads(log.read_text().splitlines()[0])["step"] == 0
