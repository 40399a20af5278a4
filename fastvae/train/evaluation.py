"""Evaluation during and after training: the negative ELBO and the importance-sampled NLL of a
split, each rank on its own shard, summed over ranks."""

import math

import torch

from .. import evaluate


def eval_samples(args, device):
    """K, the importance samples of the test NLL: --eval-samples, else 1000 on CUDA, 100 on CPU."""
    return args.eval_samples or (1000 if device.type == "cuda" else 100)


def eval_rows(args, shape):
    """Rows per decoder call of the test NLL: --eval-rows, else 65536 rows of 784 pixels, as many
    pixels for larger images (a conv decoder's activations at 3x64x64 reach ~12 GB at 65536)."""
    return args.eval_rows or max(1, 65536 * 784 // math.prod(shape))


def evaluate_split(model, x, d, args, generator):
    """Neg. ELBO and IWAE NLL over ``x`` (sharded over ranks), reduced; returns floats.
    With ``args`` None only the ELBO is computed and the NLL returned is None."""
    shard = x[d.rank::d.world]
    sums = torch.zeros(3 if args is not None else 2, dtype=torch.float64, device=x.device)
    if shard.shape[0]:  # a rank may have no share of a tiny set
        sums[0] = -evaluate.elbo(model, shard).double().sum()
        sums[1] = shard.shape[0]
        if args is not None:
            sums[2] = -evaluate.log_likelihood(model, shard, num_samples=eval_samples(args, x.device),
                                               max_rows=eval_rows(args, x.shape[1:]), generator=generator).sum()
    sums = d.sum(sums).tolist()
    return sums[0] / sums[1], (sums[2] / sums[1] if args is not None else None)
