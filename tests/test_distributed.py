"""torch.distributed: 2 gloo processes (CPU) against one process that sees the whole batch."""

import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from signalprop import Monitor, init_model, probe
from signalprop.clip import adaptive_clip_grad_, clip_grad_norm_
from signalprop.distributed import Merge, merge_rows
from signalprop.models import cnn, mlp
from signalprop.monitor import MemorySink

from . import _distributed_workers as workers

WORLD = 2
REL = 1e-5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(fn, tmp_path) -> list[dict]:
    mp.spawn(fn, args=(WORLD, _free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def _close(a, b, rel=REL, floor=1e-12):
    if a is None or b is None:
        return a is b
    return abs(a - b) <= rel * max(abs(a), abs(b)) + floor


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    return _spawn(workers.ddp, tmp_path_factory.mktemp("ddp"))


@pytest.fixture(scope="module")
def fsdp_results(tmp_path_factory):
    return _spawn(workers.fsdp, tmp_path_factory.mktemp("fsdp"))


@pytest.fixture(scope="module")
def fsdp1_results(tmp_path_factory):
    return _spawn(workers.fsdp1, tmp_path_factory.mktemp("fsdp1"))


def _reference_training(clip=None, lr=0.1, steps=3, update_every=1):
    """One process, the whole batch, the same loop."""
    net = workers.model()
    x, y = workers.batch()
    sink = MemorySink()
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    norms = []
    with Monitor(net, sinks=[sink], summary=False, update_every=update_every) as monitor:
        for _ in range(steps):
            loss = nn.functional.cross_entropy(net(x), y)
            loss.backward()
            monitor.step(loss if clip is None else None)
            if clip == "norm":
                norms.append(torch.nn.utils.clip_grad_norm_(net.parameters(), 0.05))
            elif clip == "agc":
                adaptive_clip_grad_(net, 0.01)
            optimizer.step()
            optimizer.zero_grad()
    return net, sink.records, norms


def _assert_records_match(got: dict, want: dict, keys=("fwd_mean", "fwd_var", "bwd_mean", "bwd_var", "dead")):
    assert [r["name"] for r in got["layers"]] == [r["name"] for r in want["layers"]]
    for g, w in zip(got["layers"], want["layers"]):
        for key in keys:
            # a mean is compared relative to the spread: float32 sums round at ~1e-7 of Σ|x|
            spread = w.get(key.replace("mean", "var")) if key.endswith("mean") else None
            floor = REL * spread**0.5 if spread else 1e-12
            assert _close(g[key], w[key], floor=floor), (g["name"], key, g[key], w[key])
    for g, w in zip(got["params"], want["params"], strict=True):
        assert g["name"] == w["name"]
        for key in ("grad_norm", "norm", "update_ratio"):
            assert _close(g[key], w[key]), (g["name"], key, g[key], w[key])


def test_ddp_monitor_equals_single_process_full_batch(ddp_results):
    _, want, _ = _reference_training()
    rank0, rank1 = ddp_results
    assert len(rank0["records"]) == 3 and rank1["records"] == []  # the sinks write on rank 0 only
    for got, ref in zip(rank0["records"], want):
        _assert_records_match(got, ref)
        assert _close(got["loss"], ref["loss"])
    assert rank0["last"]["layers"] == rank1["last"]["layers"]  # every rank holds the merged record
    relu = next(r for r in rank0["records"][0]["layers"] if r["kind"] == "ReLU")
    assert relu["dead"] == next(r for r in want[0]["layers"] if r["kind"] == "ReLU")["dead"]


def test_ddp_probe_rows_equal_single_process_full_batch(ddp_results):
    x, y = workers.batch()
    want = probe(workers.model(), x, target=y, loss_fn=nn.CrossEntropyLoss()).to_dict()["rows"]
    for result in ddp_results:
        got = result["probe"]["rows"]
        assert len(got) == len(want)
        for g, w in zip(got, want):
            for key in ("fwd_mean", "fwd_var", "fwd_unit_var_min", "fwd_unit_var_max", "bwd_mean", "bwd_var",
                        "bwd_unit_var_min", "bwd_unit_var_max", "fwd_dead"):
                assert _close(g[key], w[key], floor=1e-9 * max(1.0, abs(w["fwd_var"]) ** 0.5)), (g["name"], key)


def test_init_is_identical_on_every_rank(ddp_results):
    a, b = ddp_results
    assert all(torch.equal(p, q) for p, q in zip(a["seeded"], b["seeded"]))
    eager = workers.model(seed=5)
    init_model(eager, "xavier_normal", generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(p, q) for p, q in zip(a["seeded"], eager.parameters()))
    # different seeds on the ranks, then broadcast from rank 0: rank 0's weights everywhere
    assert all(torch.equal(p, q) for p, q in zip(a["broadcast"], b["broadcast"]))
    assert all(torch.equal(p, q) for p, q in zip(a["broadcast"], workers.model(seed=100).parameters()))


def test_fsdp2_global_norm_clipping_equals_single_process(fsdp_results):
    net, records, norms = _reference_training(clip="norm", lr=0.5, steps=2)
    for result in fsdp_results:
        assert all(type(n) is torch.Tensor for n in result["norms"])  # not a DTensor
        for got, want in zip(result["norms"], norms):
            assert _close(float(got), float(want))
        for got, want in zip(result["norm_weights"], net.parameters()):
            assert torch.allclose(got, want, rtol=REL, atol=1e-7)
        _assert_records_match(result["norm_record"], records[-1])
    assert torch.equal(fsdp_results[0]["norms"][0], fsdp_results[1]["norms"][0])
    clipped = [float(n) for n in norms]
    assert min(clipped) > 0.05  # the clip was active, so the update depends on the global norm


def test_fsdp2_adaptive_clipping_equals_single_process(fsdp_results):
    net, _, _ = _reference_training(clip="agc", lr=0.5, steps=2)
    for result in fsdp_results:
        for got, want in zip(result["agc_weights"], net.parameters()):
            assert torch.allclose(got, want, rtol=REL, atol=1e-7)


def test_fsdp1_global_norm_clipping_and_monitor_equal_single_process(fsdp1_results):
    net, records, norms = _reference_training(clip="norm", lr=0.5, steps=2)
    want = records[-1]
    for result in fsdp1_results:
        for orig in (True, False):
            for got, ref in zip(result[f"norms_{orig}"], norms, strict=True):
                assert type(got) is torch.Tensor and _close(float(got), float(ref))
            for got, ref in zip(result[f"weights_{orig}"], net.parameters(), strict=True):
                assert torch.allclose(got, ref, rtol=REL, atol=1e-7)
        # original parameters: named as in the plain model, norms of the whole tensors from the shards
        _assert_records_match(result["record_True"], want)
        # flat parameters (one per wrapped Linear, weight then bias): the norm of both together
        flat = result["record_False"]
        _assert_records_match({"layers": flat["layers"], "params": []}, {"layers": want["layers"], "params": []})
        by_name = {p["name"]: p for p in want["params"]}
        assert [p["name"] for p in flat["params"]] == ["0._flat_param", "2._flat_param", "4._flat_param"]
        for p, layer in zip(flat["params"], ("0", "2", "4")):
            for key in ("grad_norm", "norm"):
                whole = (by_name[f"{layer}.weight"][key] ** 2 + by_name[f"{layer}.bias"][key] ** 2) ** 0.5
                assert _close(p[key], whole), (p["name"], key)
    assert fsdp1_results[0]["record_True"] == fsdp1_results[1]["record_True"] | {"time": fsdp1_results[0][
        "record_True"]["time"]}
    assert min(float(n) for n in norms) > 0.05  # the clip was active


def test_fsdp1_refuses_what_it_cannot_do_right(fsdp1_results):
    for result in fsdp1_results:
        for orig in (True, False):
            assert "pass the FSDP-wrapped module itself" in result[f"bare_error_{orig}"]
            assert "flattened these parameters" in result[f"agc_error_{orig}"]


def test_meta_device_init_equals_eager_init():
    for build in (lambda: mlp(6, 32, "relu"), lambda: cnn(3, (8, 16), 10), lambda: nn.LSTM(8, 16, 2)):
        eager = build()
        init_model(eager, "kaiming_normal", activation="relu", generator=torch.Generator().manual_seed(7))
        with torch.device("meta"):
            lazy = build()
        init_model(lazy, "kaiming_normal", activation="relu")  # meta tensors are left alone
        lazy.to_empty(device="cpu")
        init_model(lazy, "kaiming_normal", activation="relu", generator=torch.Generator().manual_seed(7))
        for (name, p), q in zip(eager.named_parameters(), lazy.parameters()):
            assert torch.equal(p, q), name


def test_merge_rules():
    rows = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 3.0, 2.0, 8.0],
                         [3.0, 1.0, 1.0, 6.0, 7.0, 4.0, 6.0, 4.0]], dtype=torch.float64).numpy()
    rules = torch.tensor([Merge.SUM, Merge.MAX, Merge.MIN, Merge.MEAN, Merge.FIRST, Merge.NORM, Merge.GRAD_SUM,
                          Merge.GRAD_SQUARES]).numpy()
    assert merge_rows(rows, rules).tolist() == [4.0, 2.0, 1.0, 5.0, 5.0, 5.0, 4.0, 3.0]


def test_clean_name_drops_fsdp1_wrapper_segments():
    from signalprop.distributed import clean_name

    assert clean_name("_fsdp_wrapped_module.0._fsdp_wrapped_module.weight") == "0.weight"
    assert clean_name("_fsdp_wrapped_module") == ""
    assert clean_name("encoder.layers.0.linear1") == "encoder.layers.0.linear1"
