"""A training step under ``torch.autocast`` at the extremes the ops document: log-variances at
the ends of [-30, 20], logits at +-1e4, Gaussian logscales at +-20. The loss is finite, every
gradient is finite wherever the true (float64) gradient is representable, and the fused path
(the kernels, through the interpreter on a CPU) gives what the reference path (``fused=False``)
gives under the same autocast, with the same weights and noise.

CPU autocast runs linear layers and convolutions in bfloat16 or float16, so the decoder's
output (logits, the Gaussian's mean) and mu, logvar reach the ops in that dtype, as on a GPU.
float16 is checked at the extremes whose gradients float16 can hold: a logvar of 20 has a KL
gradient of 0.5 * e^20 = 2.4e8 and a logscale of -20 a mean gradient of ~e^40, beyond float16's
65504, so the float16 cases stop at logvar 10 and logscale -5; even there the model's own float16
backward overflows (the decoder's hidden gradients reach ~1e5), for the reference path as for
the fused one: float16 is held to "finite wherever the reference path is, and equal there"
(the infinities are what a GradScaler expects to see), bfloat16 to "finite wherever the true
gradient is representable". What waits for a GPU: the compiled kernels' own half-
precision arithmetic (the interpreter computes in NumPy) and CUDA autocast's op lists.
"""

import copy

import pytest
import torch

from fastvae import likelihoods
from fastvae.models import ConvVAE, MLPVAE

ARCHS = {"mlp": (MLPVAE, (1, 12, 12), dict(hidden=(32,), latent_dim=6)),
         "conv": (ConvVAE, (1, 16, 16), dict(latent_dim=6, channels=(4, 8)))}
# (autocast dtype, the logvar ends, the Gaussian's logscale settings)
DTYPES = {"bfloat16": (torch.bfloat16, (-30.0, 20.0), (20.0, -20.0, "per-pixel")),
          "float16": (torch.float16, (-30.0, 10.0), (20.0, -5.0, "per-pixel"))}


def _cases():
    for dname, (_, _, logscales) in DTYPES.items():
        for rec in likelihoods.records():
            if rec.counts:  # CountVAE's (scVI's) likelihoods: not these image models'
                continue
            if rec.layout is not None:  # the mixture: its extremes (log-scales at the clamp, |mean| = 30)
                continue                # are its own (tests/ops/test_dmol.py, and fuzzed), not logits of 1e4
            for ls in (logscales if rec.has_scale else (None,)):
                for arch in ARCHS:
                    yield pytest.param(arch, rec.name, ls, dname, id=f"{arch}-{rec.name}-{ls}-{dname}")


def _alternating(shape, a, b):
    t = torch.full(shape, a)
    t.view(-1)[1::2] = b
    return t


def extreme_model(arch, likelihood, logscale, logvar_ends):
    """A model whose encoder gives logvar at the two ends (alternating over the latent dims)
    and whose decoder gives logits at +-1e4 (the Gaussian: ordinary means, logscale as asked;
    ``per-pixel``: a learned logscale at +-20, clamped at its floor below)."""
    cls, shape, kw = ARCHS[arch]
    torch.manual_seed(0)
    model = cls(shape, likelihood=likelihood, logscale=20.0 if logscale is None else logscale, **kw)
    L = model.latent_dim
    last = model.encoder[-1]
    with torch.no_grad():
        last.weight[L:] = 0.0
        last.bias[L:] = _alternating((L,), *logvar_ends)
        model.decoder[0].weight.mul_(1e-6)  # z reaches e^10 * eps: the logits stay at the bias
        if model.spec.has_scale:
            model.output_bias.copy_(torch.rand(model.input_shape))
        else:
            model.output_bias.copy_(_alternating(model.input_shape, 1e4, -1e4))
        if logscale == "per-pixel":
            model.logscale.copy_(_alternating(model.input_shape, 20.0, -20.0))
    return model


def _step(model, x, eps, dtype):
    """One training step (loss, backward, Adam); returns the loss and the gradients."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    if dtype is None:
        loss = model.loss(x, eps=eps)
    else:
        with torch.autocast("cpu", dtype=dtype):
            loss = model.loss(x, eps=eps)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    opt.step()
    return loss.detach(), grads


@pytest.mark.parametrize("arch, likelihood, logscale, dname", list(_cases()))
def test_a_training_step_under_autocast_at_the_extremes(arch, likelihood, logscale, dname):
    dtype, logvar_ends, _ = DTYPES[dname]
    model = extreme_model(arch, likelihood, logscale, logvar_ends)
    spec = model.spec
    x = (torch.rand(5, *model.input_shape) < 0.5).to(torch.uint8) if spec.uint8 == likelihoods.BINARY else \
        torch.randint(0, 256, (5, *model.input_shape), dtype=torch.uint8)
    eps = torch.randn(5, model.latent_dim).clamp(-2, 2)
    runs = {}
    for fused in (True, False):
        m = copy.deepcopy(model)
        m.fused = fused
        runs[fused] = _step(m, x, eps, dtype)
    truth = copy.deepcopy(model).double()
    truth.fused = False
    true_loss, true_grads = _step(truth, x, eps.double(), None)
    (loss, grads), (ref_loss, ref_grads) = runs[True], runs[False]
    assert torch.isfinite(loss) and torch.isfinite(ref_loss) and torch.isfinite(true_loss)
    torch.testing.assert_close(loss, ref_loss, rtol=2e-2, atol=0.0)
    assert grads.keys() == ref_grads.keys() == true_grads.keys()
    for name, g in grads.items():
        ref = ref_grads[name]
        if dtype == torch.bfloat16:  # bfloat16 has float32's range: every representable gradient is finite
            representable = torch.isfinite(true_grads[name]) & (true_grads[name].abs() < torch.finfo(g.dtype).max)
            assert torch.isfinite(g[representable]).all(), f"{name}: a gradient not finite where the truth is"
        # float16: the model's own backward overflows float16 at some of these extremes (the
        # reference path's too); the fused path must be finite wherever the reference is
        finite = torch.isfinite(ref)
        assert torch.isfinite(g[finite]).all(), f"{name}: not finite where the reference path's gradient is"
        # the two paths differ by half-precision roundings of the same numbers: per parameter,
        # against the scale of its gradient
        scale = ref[finite].abs().max().clamp(min=1e-30) if finite.any() else 1.0
        torch.testing.assert_close(g[finite] / scale, ref[finite] / scale, rtol=0.0, atol=3e-2,
                                   msg=lambda m: f"{name}: {m}")
