"""fastvae.data.loader: DeviceLoader's order, reproducibility, resume, sharding over ranks,
dynamic binarization, argument checks and (on CUDA) freedom from host syncs."""

import math

import pytest
import torch

from fastvae import data

from data_helpers import assert_mean_follows_grey, grey_levels, no_data_dir_env  # noqa: F401 (autouse fixture)


def _ids(n, device):
    """uint8 data whose example i can be recognised: bytes of i in the first two pixels."""
    x = torch.zeros(n, 1, 2, 2, dtype=torch.uint8)
    i = torch.arange(n)
    x[:, 0, 0, 0] = (i % 256).to(torch.uint8)
    x[:, 0, 0, 1] = (i // 256).to(torch.uint8)
    return x.to(device)


def _which(batch):
    return (batch[:, 0, 0, 0].long() + 256 * batch[:, 0, 0, 1].long()).tolist()


def test_loader_epoch_is_a_permutation(device):
    n, B = 1003, 64
    x = _ids(n, device)
    loader = data.DeviceLoader(x, B, seed=3, drop_last=False)
    assert len(loader) == 16
    batches = list(loader.epoch(0))
    assert len(batches) == 16 and all(b.shape == (B, 1, 2, 2) for b in batches[:-1]) and len(batches[-1]) == n - 15 * B
    assert all(b.dtype == torch.uint8 and b.device.type == device.type for b in batches)
    seen = [i for b in batches for i in _which(b)]
    assert sorted(seen) == list(range(n)) and seen != list(range(n))
    # drop_last: whole batches only, none repeated
    dl = data.DeviceLoader(x, B, seed=3)
    seen = [i for b in dl.epoch(0) for i in _which(b)]
    assert len(dl) == 15 and len(seen) == 15 * B and len(set(seen)) == len(seen)
    # no shuffle: data order
    assert _which(next(data.DeviceLoader(x, 5, shuffle=False).epoch(7))) == [0, 1, 2, 3, 4]


def test_loader_reproducible_and_epochs_differ(device):
    x = _ids(500, device)
    a = data.DeviceLoader(x, 50, seed=1)
    b = data.DeviceLoader(x, 50, seed=1)
    e0, e0b = [_which(t) for t in a.epoch(0)], [_which(t) for t in b.epoch(0)]
    assert e0 == e0b
    assert [_which(t) for t in a.epoch(0)] == e0  # the same epoch again, after other epochs
    assert [_which(t) for t in a.epoch(1)] != e0
    assert [_which(t) for t in data.DeviceLoader(x, 50, seed=2).epoch(0)] != e0


def test_loader_resume(device):
    x = _ids(700, device)
    loader = data.DeviceLoader(x, 64, seed=9)
    full = list(loader.epoch(4))
    resumed = list(data.DeviceLoader(x, 64, seed=9).epoch(4, start=5))
    assert len(resumed) == len(full) - 5
    assert all(torch.equal(p, q) for p, q in zip(full[5:], resumed))
    assert list(loader.epoch(4, start=len(loader))) == []
    with pytest.raises(ValueError, match="start=11 is past the 10 batches"):
        loader.epoch(4, start=11)


@pytest.mark.parametrize("n, world", [(1000, 4), (1003, 3)])
def test_loader_ranks_are_disjoint_and_cover(device, n, world):
    x = _ids(n, device)
    per_rank = n // world
    B = 25
    for epoch in (0, 1):
        shards = []
        for r in range(world):
            ld = data.DeviceLoader(x, B, seed=5, rank=r, world_size=world, drop_last=False)
            batches = list(ld.epoch(epoch))
            assert len(ld) == len(batches) == math.ceil(per_rank / B)
            shards.append([i for b in batches for i in _which(b)])
        assert all(len(s) == per_rank for s in shards)
        union = set().union(*map(set, shards))
        assert sum(map(len, shards)) == len(union) == per_rank * world  # disjoint, remainder dropped
        if n % world == 0:
            assert union == set(range(n))
    # the shards are the same one permutation, dealt out round-robin
    single = [i for b in data.DeviceLoader(x, per_rank * world, seed=5, drop_last=False).epoch(2) for i in _which(b)]
    ranks = [[i for b in data.DeviceLoader(x, B, seed=5, rank=r, world_size=world, drop_last=False).epoch(2)
              for i in _which(b)] for r in range(world)]
    for r in range(world):
        assert ranks[r] == single[r:per_rank * world:world]


def test_loader_dynamic_binarization(device):
    grey = grey_levels(4096).to(device)
    loader = data.DeviceLoader(grey, 1024, seed=2, dynamic=True, shuffle=False)
    batches = list(loader.epoch(0))
    for i, b in enumerate(batches):
        assert b.dtype == torch.uint8 and set(b.unique().tolist()) == {0, 1}
        g = grey[i * 1024:(i + 1) * 1024]
        assert not b[g == 0].any() and b[g == 255].all()
        assert_mean_follows_grey(b, g)
    # per pixel value: the fraction of ones follows grey / 255 (over many resamples)
    loader1 = data.DeviceLoader(grey[:1], 1, seed=0, dynamic=True, shuffle=False)
    samples = torch.stack([next(loader1.epoch(e)) for e in range(3000)]).double().mean(0)
    torch.testing.assert_close(samples, grey[:1].double() / 255, atol=0.05, rtol=0)  # 5.5 sigma
    # reproducible, resumable, and fresh every epoch
    again = list(data.DeviceLoader(grey, 1024, seed=2, dynamic=True, shuffle=False).epoch(0, start=2))
    assert torch.equal(again[0], batches[2]) and torch.equal(again[1], batches[3])
    assert not torch.equal(next(loader.epoch(1)), batches[0])
    # fresh noise per batch and per rank, even for identical grey levels
    flat = torch.full((64, 1, 4, 4), 128, dtype=torch.uint8, device=device)
    b0, b1 = data.DeviceLoader(flat, 32, dynamic=True).epoch(0)
    assert not torch.equal(b0, b1)
    r0, r1 = (next(data.DeviceLoader(flat, 32, dynamic=True, rank=r, world_size=2).epoch(0)) for r in (0, 1))
    assert not torch.equal(r0, r1)
    # static: the data as stored
    static = list(data.DeviceLoader(grey, 1024, seed=2, shuffle=False).epoch(0))
    assert torch.equal(static[1], grey[1024:2048])


def test_loader_argument_errors():
    x = torch.zeros(10, 1, 2, 2, dtype=torch.uint8)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        data.DeviceLoader(x, 0)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        data.DeviceLoader(x, 2.0)
    with pytest.raises(TypeError, match="data must be a uint8 tensor"):
        data.DeviceLoader(x.float(), 2, dynamic=True)  # binarizing needs grey levels as bytes
    with pytest.raises(TypeError, match="data must be a torch.Tensor"):
        data.DeviceLoader(x.numpy(), 2)
    with pytest.raises(ValueError, match=r"rank must be in \[0, world_size\) = \[0, 2\), got 2"):
        data.DeviceLoader(x, 2, rank=2, world_size=2)
    with pytest.raises(ValueError, match="world_size must be >= 1"):
        data.DeviceLoader(x, 2, world_size=0)
    with pytest.raises(ValueError, match="batch_size=6 is larger than the 5 examples per rank"):
        data.DeviceLoader(x, 6, world_size=2)
    assert len(data.DeviceLoader(x, 6, world_size=2, drop_last=False)) == 1
    with pytest.raises(ValueError, match="fewer than world_size=11"):
        data.DeviceLoader(x, 1, world_size=11)
    with pytest.raises(ValueError, match="at least one example"):
        data.DeviceLoader(x[:0], 1)
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        data.DeviceLoader(x, 2).epoch(-1)


@pytest.mark.gpu
def test_loader_never_syncs_the_host():
    x = grey_levels(5000).cuda()
    loader = data.DeviceLoader(x, 256, seed=0, dynamic=True, rank=1, world_size=2)
    list(loader.epoch(0))  # warm up (allocator, generator)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for b in loader.epoch(1, start=2):
            b.float().sum()
    finally:
        torch.cuda.set_sync_debug_mode("default")
