"""Evaluation of a trained VAE: the ELBO and an importance-sampled log-likelihood (IWAE bound).

For an example x and K draws ``z_k = mu + sigma * eps_k`` from q(z | x),

    log p(x) ~= logsumexp_k [log p(x | z_k) + log p(z_k) - log q(z_k | x)] - log K

which is a lower bound on log p(x) that tightens as K grows (Burda et al., 2016) and equals
the ELBO in expectation for K = 1. With N(0, I) prior and diagonal Gaussian q the Gaussian
terms reduce to ``0.5 * sum(eps^2 - z^2 + logvar)`` (the 2*pi terms cancel). log p(x | z) is the
model's fused log-likelihood, run without gradients (so no gradient buffer is stored).
"""

import math
from typing import Iterable, Optional, Union

import torch
from torch import Tensor

from . import likelihoods, reference
from . import ops as fastvae_ops
from ._checks import check_int

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


def _log_sum_weights(model, x: Tensor, mu: Tensor, logvar: Tensor, k: int, generator) -> Tensor:
    """(b,) float64 ``logsumexp_k log w_k`` of k fresh samples per example, through the same ops
    as importance-weighted training (``reparameterize_iw``, ``iwae_loss``: the targets read
    once for all k samples)."""
    b, L = mu.shape
    lib = fastvae_ops if getattr(model, "fused", True) else reference
    z, lr = lib.reparameterize_iw(mu, logvar, k, generator=generator)
    recon = model.decode(z.reshape(k * b, L).to(model.output_bias.dtype))
    recon = recon.reshape(k, b, *recon.shape[1:])
    likelihood = getattr(model, "likelihood", likelihoods.DEFAULT)
    logscale = model.output_logscale() if hasattr(model, "output_logscale") else 0.0
    neg_bound = lib.iwae_loss(recon, x, lr, likelihood=likelihood, logscale=logscale, reduction="none")
    return math.log(k) - neg_bound.double()


def _weights_of(model, x: Tensor, generator):
    """``k -> (b,)`` float64 ``logsumexp_k log w_k`` of k fresh samples for the examples ``x``: the
    model's own ``log_weight_sum`` where it has one (``CountVAE``, a hierarchical VAE), else a
    ``VAE``'s, x encoded once."""
    if hasattr(model, "log_weight_sum"):
        return lambda k: model.log_weight_sum(x, k, generator=generator)
    mu, logvar = model.encode(x)
    return lambda k: _log_sum_weights(model, x, mu, logvar, k, generator)


@torch.no_grad()
def log_likelihood(model, data: Data, num_samples: int = 1000, *, max_rows: int = 65536,
                   generator: Optional[torch.Generator] = None) -> Tensor:
    """Importance-sampled estimate of log p(x) per example: the IWAE bound with K samples.

    Args:
        model: a ``fastvae.models.VAE`` (anything with ``encode``, ``decode``, ``fused``,
            ``output_bias``), or a model with its own ``log_weight_sum(x, k, generator=)``
            ((b,) float64 ``logsumexp`` of k log importance weights: ``fastvae.models.CountVAE``,
            a hierarchical VAE).
        data: (N, ...) tensor of examples of the model's likelihood (uint8, bool or float), on
            the model's device, or an iterable of such batches.
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
                weights = _weights_of(model, xb, generator)
                parts = [weights(min(chunk, num_samples - s)) for s in range(0, num_samples, chunk)]
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
        # the true ELBO from the terms: a model's loss may differ from it (free bits)
        out = []
        for x in _batches(data, batch_size):
            terms = model.loss(x, beta=1.0, reduction="none", return_terms=True)
            out.append(terms.log_likelihood - terms.kl)
    if not out:
        raise ValueError("data holds no examples")
    return torch.cat(out)
