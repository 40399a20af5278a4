"""One process per device: rank, world size, device choice, and the process group's set-up,
reductions and tear-down (a single process is world size 1 and has no process group)."""

import contextlib
import os

import torch
import torch.distributed as dist


class Dist:
    """Rank, world size and reductions; a single process is world size 1 with no process group."""

    def __init__(self, device_arg):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        want = device_arg or ("cuda" if torch.cuda.is_available() else "cpu")
        self.device = torch.device(want)
        if self.device.type == "cuda" and self.world > 1 and self.device.index not in (None, local):
            raise ValueError(f"under torchrun each process uses cuda:LOCAL_RANK; pass --device cuda, "
                             f"not {device_arg}")
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", local if self.world > 1 else torch.cuda.current_device())
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if self.world > 1:
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend)

    @property
    def main(self):
        return self.rank == 0

    def sum(self, t):
        if self.world > 1:
            dist.all_reduce(t)
        return t

    def gather(self, obj):
        if self.world == 1:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self):
        if self.world > 1:
            dist.barrier()

    def close(self):
        if self.world > 1:
            dist.destroy_process_group()


@contextlib.contextmanager
def process_group(device_arg):
    """``Dist`` for the duration of a run; the process group is torn down however the run ends."""
    d = Dist(device_arg)
    try:
        yield d
        # every rank waits for rank 0's files before the process group goes: a rank tearing
        # down Gloo while another still uses it can abort that one at exit
        d.barrier()
    finally:
        d.close()
