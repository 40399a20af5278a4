"""``DeviceLoader``: batches from a tensor already on the device, one ``randperm`` per epoch and
one ``index_select`` per batch, so the input pipeline never limits samples/s."""

from __future__ import annotations

from typing import Iterator

import torch

from .._checks import check_int
from ._random import binarize, seed_for, seeded_generator


class DeviceLoader:
    """Batches from a tensor ``data`` (N, ...) already on the device, in a new random order each
    epoch: uint8 (the built-in data sets: 0/1, or grey levels with ``dynamic=True``) or any dtype
    a likelihood reads (your own data, e.g. float32), served as it is.

    Epoch ``e``'s order is ``torch.randperm(N)`` drawn with a ``torch.Generator`` on the data's
    device seeded from ``(seed, e)`` only, so it is identical on every rank and on every run
    (for a given device type and PyTorch). Batches are ``index_select``s of that order: no host
    sync and no per-example Python, so the loader never limits samples/s.

    Data-parallel sharding (``world_size > 1``): the first ``N - N % world_size`` positions of
    the permuted order are dealt out round-robin, rank ``r`` taking positions
    ``r, r + world_size, ...`` (``perm[r::world_size]``); the ``N % world_size`` left over are
    dropped for that epoch (a different set each epoch), so every rank yields the same number of
    batches and no example is seen twice in an epoch. ``batch_size`` is per rank.

    With ``dynamic=True`` the data holds grey levels 0..255 and each batch is binarized here:
    pixel = 1 with probability grey/255, from a generator seeded from
    ``(seed, epoch, batch index, rank)``. Resuming with ``epoch(e, start=k)`` therefore yields
    exactly the batches ``k, k+1, ...`` of an unbroken ``epoch(e)``.
    """

    def __init__(self, data: torch.Tensor, batch_size: int, *, seed: int = 0, shuffle: bool = True,
                 drop_last: bool = True, dynamic: bool = False, rank: int = 0, world_size: int = 1):
        if not isinstance(data, torch.Tensor):
            raise TypeError(f"data must be a torch.Tensor, got {type(data).__name__}")
        if dynamic is True and data.dtype != torch.uint8:
            raise TypeError(f"dynamic=True binarizes grey levels 0..255 per batch: data must be a uint8 tensor, "
                            f"got dtype {data.dtype}")
        if data.dim() < 1 or data.shape[0] == 0:
            raise ValueError(f"data must hold at least one example, got shape {tuple(data.shape)}")
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.seed = check_int("seed", seed)
        self.world_size = check_int("world_size", world_size, 1)
        self.rank = check_int("rank", rank)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank must be in [0, world_size) = [0, {self.world_size}), got {self.rank}")
        for arg, v in (("shuffle", shuffle), ("drop_last", drop_last), ("dynamic", dynamic)):
            if not isinstance(v, bool):
                raise TypeError(f"{arg} must be a bool, got {type(v).__name__}")
        self.data, self.shuffle, self.drop_last, self.dynamic = data, shuffle, drop_last, dynamic
        self.per_rank = data.shape[0] // self.world_size
        if self.per_rank == 0:
            raise ValueError(f"data has {data.shape[0]} examples, fewer than world_size={self.world_size}")
        if drop_last and self.batch_size > self.per_rank:
            raise ValueError(f"batch_size={self.batch_size} is larger than the {self.per_rank} examples "
                             f"per rank (data {data.shape[0]}, world_size {self.world_size}) with "
                             "drop_last=True: no batch would be produced")
        # positions this rank takes from each epoch's order (fixed; only the order changes)
        used = self.per_rank * self.world_size
        self._positions = torch.arange(self.rank, used, self.world_size, device=data.device)

    def __len__(self) -> int:
        """Batches per epoch for this rank."""
        if self.drop_last:
            return self.per_rank // self.batch_size
        return -(-self.per_rank // self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        """Indices into ``data`` of this rank's examples for ``epoch``, in the order served."""
        epoch = check_int("epoch", epoch, 0)
        if not self.shuffle:
            return self._positions
        g = seeded_generator(self.data.device, seed_for(self.seed, epoch, 0x5E))
        perm = torch.randperm(self.data.shape[0], generator=g, device=self.data.device)
        return perm.index_select(0, self._positions)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[torch.Tensor]:
        """Yield this rank's batches of ``epoch`` from batch ``start`` on: (batch_size, ...) of the
        data's dtype, 0/1 for dynamic data (the last one smaller with ``drop_last=False``)."""
        epoch = check_int("epoch", epoch, 0)
        start = check_int("start", start, 0)
        n = len(self)
        if start > n:
            raise ValueError(f"start={start} is past the {n} batches of an epoch")
        return self._batches(epoch, start, n)

    def _batches(self, epoch, start, n):
        order = self.order(epoch)
        B = self.batch_size
        g = torch.Generator(device=self.data.device) if self.dynamic else None
        for i in range(start, n):
            batch = self.data.index_select(0, order[i * B:(i + 1) * B])
            if self.dynamic:
                g.manual_seed(seed_for(self.seed, epoch, i, self.rank, 0xD1))
                batch = binarize(batch, g)
            yield batch
