"""Evaluation of a trained VAE: the ELBO and an importance-sampled log-likelihood (IWAE bound).

For an example x and K draws ``z_k = mu + sigma * eps_k`` from q(z | x),

    log p(x) ~= logsumexp_k [log p(x | z_k) + log p(z_k) - log q(z_k | x)] - log K

which is a lower bound on log p(x) that tightens as K grows (Burda et al., 2016) and equals
the ELBO in expectation for K = 1. With N(0, I) prior and diagonal Gaussian q the Gaussian
terms reduce to ``0.5 * sum(eps^2 - z^2 + logvar)`` (the 2*pi terms cancel). log p(x | z) is the
fused Bernoulli log-likelihood, run without gradients (so no gradient buffer is stored).
"""

import math
from typing import Iterable, Optional, Union

import torch
from torch import Tensor

from . import reference
from ._checks import check_int
from .ops import bernoulli_log_likelihood

__all__ = ["log_likelihood", "elbo"]

Data = Union[Tensor, Iterable[Tensor]]


def _batches(data: Data, batch_size: int):
    if isinstance(data, Tensor):
        for i in range(0, data.shape[0], batch_size):
            yield data[i:i + batch_size]
    else:
        yield from data


class _EvalMode:
    def __init__(self, model):
        self.model, self.was_training = model, model.training

    def __enter__(self):
        self.model.eval()

    def __exit__(self, *exc):
        self.model.train(self.was_training)


def _log_weights(model, x: Tensor, mu: Tensor, logvar: Tensor, k: int, generator) -> Tensor:
    """(b, k) importance log-weights of k fresh samples per example."""
    b, L = mu.shape
    eps = torch.randn(b, k, L, device=mu.device, dtype=mu.dtype, generator=generator)
    z = mu[:, None] + torch.exp(0.5 * logvar)[:, None] * eps
    logits = model.decode(z.reshape(b * k, L).to(model.output_bias.dtype))
    x_rep = x[:, None].expand(b, k, *x.shape[1:]).reshape(b * k, *x.shape[1:])
    if hasattr(model, "log_likelihood"):  # a fastvae VAE: its own likelihood
        ll = model.log_likelihood(logits, x_rep)
    else:
        ll = (bernoulli_log_likelihood if model.fused else reference.bernoulli_log_likelihood)(logits, x_rep)
    log_pz_over_q = 0.5 * (eps.square() - z.square()).sum(-1) + 0.5 * logvar.sum(-1)[:, None]
    return ll.view(b, k).to(mu.dtype) + log_pz_over_q


@torch.no_grad()
def log_likelihood(model, data: Data, num_samples: int = 1000, *, max_rows: int = 65536,
                   generator: Optional[torch.Generator] = None) -> Tensor:
    """Importance-sampled estimate of log p(x) per example: the IWAE bound with K samples.

    Args:
        model: a ``fastvae.models.VAE`` (anything with ``encode``, ``decode``, ``fused``,
            ``output_bias``).
        data: (N, ...) tensor of binary examples (uint8 0/1, bool or float), on the model's
            device, or an iterable of such batches.
        num_samples: K, the number of importance samples per example (5000 in the literature).
        max_rows: at most this many (example, sample) rows go through the decoder at once;
            examples are taken ``max_rows // K`` at a time, and for K > max_rows the samples of
            one example are split into chunks combined exactly with logsumexp.
        generator: for the draws (default: PyTorch's default generator of the device).

    Returns:
        (N,) float64 log-likelihood estimates (nats) on the data's device; the test NLL is
        ``-log_likelihood(...).mean()``.
    """
    check_int("num_samples", num_samples, 1)
    check_int("max_rows", max_rows, 1)
    per_batch = max(1, max_rows // num_samples)
    chunk = min(num_samples, max_rows)
    out = []
    with _EvalMode(model):
        for x in _batches(data, per_batch):
            for xb in x.split(per_batch):
                if hasattr(model, "_check_input"):  # a VAE also takes flat (B, D) examples
                    xb = model._check_input(xb)
                mu, logvar = model.encode(xb)
                mu, logvar = mu.double(), logvar.double()
                parts = [torch.logsumexp(_log_weights(model, xb, mu, logvar, min(chunk, num_samples - s), generator), 1)
                         for s in range(0, num_samples, chunk)]
                lse = parts[0] if len(parts) == 1 else torch.logsumexp(torch.stack(parts, 1), 1)
                out.append(lse - math.log(num_samples))
    if not out:
        raise ValueError("data holds no examples")
    return torch.cat(out)


@torch.no_grad()
def elbo(model, data: Data, *, batch_size: int = 4096) -> Tensor:
    """The single-sample ELBO per example, (N,) float32 (float64 for a float64 model): minus
    ``model.loss(x, reduction='none')`` with beta = 1, on ``data`` as for ``log_likelihood``."""
    check_int("batch_size", batch_size, 1)
    with _EvalMode(model):
        out = [-model.loss(x, beta=1.0, reduction="none") for x in _batches(data, batch_size)]
    if not out:
        raise ValueError("data holds no examples")
    return torch.cat(out)
