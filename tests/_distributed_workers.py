"""Code run inside the 2-process gloo groups of test_distributed.py (spawned; importable by module name).

Each worker writes what it measured to ``out/rank{r}.pt``; the test compares it with a single process
that sees the whole batch.
"""

import os

import torch
import torch.distributed as dist
from torch import nn


def model(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 3))


def batch(n: int = 32):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


def _init(rank: int, world: int, port: int) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)


def ddp(rank: int, world: int, port: int, out: str) -> None:
    """Monitor and probe on DDP, init on every rank, broadcast."""
    from torch.nn.parallel import DistributedDataParallel

    from signalprop import Monitor, init_model, probe
    from signalprop.distributed import broadcast_parameters_
    from signalprop.monitor import MemorySink

    _init(rank, world, port)
    try:
        x, y = batch()
        part = slice(rank * len(x) // world, (rank + 1) * len(x) // world)
        net = model()
        results = {"probe": probe(net, x[part], target=y[part], loss_fn=nn.CrossEntropyLoss()).to_dict()}
        wrapped = DistributedDataParallel(net)
        sink = MemorySink()
        optimizer = torch.optim.SGD(wrapped.parameters(), lr=0.1)
        with Monitor(net, sinks=[sink], summary=False, update_every=1) as monitor:
            for _ in range(3):
                loss = nn.functional.cross_entropy(wrapped(x[part]), y[part])
                loss.backward()
                record = monitor.step(loss)
                optimizer.step()
                optimizer.zero_grad()
        results["records"] = sink.records
        results["last"] = record
        # init: the same seed gives the same weights on every rank; broadcast mends different seeds
        seeded = model(seed=5)
        init_model(seeded, "xavier_normal", generator=torch.Generator().manual_seed(3))
        results["seeded"] = [p.detach().clone() for p in seeded.parameters()]
        differing = model(seed=100 + rank)
        broadcast_parameters_(differing)
        results["broadcast"] = [p.detach().clone() for p in differing.parameters()]
        torch.save(results, os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def fsdp(rank: int, world: int, port: int, out: str) -> None:
    """FSDP2 (fully_shard on a CPU mesh): global-norm clipping, the clipped update, AGC, the monitor."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    from signalprop import Monitor
    from signalprop.clip import adaptive_clip_grad_, clip_grad_norm_

    _init(rank, world, port)
    try:
        mesh = init_device_mesh("cpu", (world,))
        x, y = batch()
        part = slice(rank * len(x) // world, (rank + 1) * len(x) // world)
        results = {}
        for mode in ("norm", "agc"):
            net = model()
            for layer in net:
                if isinstance(layer, nn.Linear):
                    fully_shard(layer, mesh=mesh)
            fully_shard(net, mesh=mesh)
            optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
            with Monitor(net, summary=False, update_every=1) as monitor:
                for _ in range(2):
                    nn.functional.cross_entropy(net(x[part]), y[part]).backward()
                    record = monitor.step()
                    if mode == "norm":
                        norm = clip_grad_norm_(net.parameters(), 0.05)
                        results.setdefault("norms", []).append(norm)
                    else:
                        adaptive_clip_grad_(net, 0.01)
                    optimizer.step()
                    optimizer.zero_grad()
            results[f"{mode}_weights"] = [p.full_tensor().detach().clone() for p in net.parameters()]
            results[f"{mode}_record"] = record
        torch.save(results, os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def fsdp1(rank: int, world: int, port: int, out: str) -> None:
    """FSDP1 (FullyShardedDataParallel on CPU, each Linear its own unit): global-norm clipping through the
    module, the monitor, and the refusals (bare flat shards for the norm, AGC)."""
    from torch.distributed.fsdp import FullyShardedDataParallel
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy

    from signalprop import Monitor
    from signalprop.clip import adaptive_clip_grad_, clip_grad_norm_

    _init(rank, world, port)
    try:
        x, y = batch()
        part = slice(rank * len(x) // world, (rank + 1) * len(x) // world)
        results = {}
        for orig in (True, False):
            net = FullyShardedDataParallel(model(), device_id=torch.device("cpu"), use_orig_params=orig,
                                           auto_wrap_policy=ModuleWrapPolicy({nn.Linear}))
            optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
            # the layers a plain model selects by default (with use_orig_params=False a Linear no longer
            # holds parameters of its own, so they are named)
            with Monitor(net, summary=False, update_every=1, layers=(nn.Linear, nn.ReLU)) as monitor:
                for _ in range(2):
                    nn.functional.cross_entropy(net(x[part]), y[part]).backward()
                    record = monitor.step()
                    results.setdefault(f"norms_{orig}", []).append(clip_grad_norm_(net, 0.05))
                    optimizer.step()
                    optimizer.zero_grad()
                nn.functional.cross_entropy(net(x[part]), y[part]).backward()
                for name, call in (("bare", lambda: clip_grad_norm_(net.parameters(), 0.05)),
                                   ("agc", lambda: adaptive_clip_grad_(net, 0.01))):
                    try:
                        call()
                    except ValueError as error:
                        results[f"{name}_error_{orig}"] = str(error)
                optimizer.zero_grad()
            results[f"record_{orig}"] = record
            with FullyShardedDataParallel.summon_full_params(net):
                results[f"weights_{orig}"] = [p.detach().clone() for p in net.module.parameters()] if orig \
                    else [p.detach().clone() for p in (net.module[0].weight, net.module[0].bias,
                                                       net.module[2].weight, net.module[2].bias,
                                                       net.module[4].weight, net.module[4].bias)]
        torch.save(results, os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()
