"""The fuzzing's entries for a record whose parameters have their own layout (the discretized
logistic mixture, ``spec.layout``): its log-likelihood, its ELBO and its K-sample bound, the
parameters (B, K, ...) made for the targets (B, C, ...) by ``likelihood_cases``, each laid out in
memory as drawn (a permuted conv output, channels-last, expanded, offset, strided); and the
sampler, given the same uniforms as PixelCNN++'s (``reference._dmol.sample_from_uniforms``).
See ``fuzz_cases``."""

import likelihood_cases as cases
import torch

import fastvae
from fastvae import _mixture, likelihoods
from fastvae.kernels import _launch
from fastvae.reference._dmol import sample_from_uniforms

from fuzz_base import CPU, Entry, normal, sprinkle

# log-scales at and below the clamp (-7), sharp and flat; means far outside [-1, 1]; logits apart
LOG_SCALE_EXTREMES = (-7.0, -9.0, -20.0, 5.0)
MEAN_EXTREMES = (30.0, -30.0, 1.0, -1.0)
LOGIT_EXTREMES = (30.0, -30.0, 0.0)


def _params(rec, spec, shape):
    """Parameters for the generic (B, ...) ``shape`` (K = 1) or (K, B, ...)."""
    p = cases.params(rec, shape, torch.float32, CPU)
    if spec.option("values") == "extreme":
        logits, means, log_scales, _ = _mixture.parts(p, cases.settings(rec, shape)["num_mixtures"], 1)
        for view, values in ((logits, LOGIT_EXTREMES), (means, MEAN_EXTREMES), (log_scales, LOG_SCALE_EXTREMES)):
            view.copy_(sprinkle(view, values))
    return p.to(spec.torch_dtype)


def _inputs(rec, spec, shape, x_of=None):
    x = cases.targets(rec, cases.x_shape(rec, x_of or shape), spec.option("target"), CPU, spec.torch_dtype)
    return {"p": (_params(rec, spec, shape), True), "x": (x, False)}


def _settings(rec, spec):
    return cases.settings(rec, spec.shape)


# 1 / scale at the log-scale clamp: how many times an input's rounding a result carries
STEEP = 2.0 ** (7 / 0.6931471805599453)


def _options(rec):
    return lambda B, F, dtype: {"target": ("float", "uint8"), "values": ("ordinary", "extreme")}


def likelihood_entry(rec):
    """The record's log-likelihood: (ll,)."""
    return Entry(f"likelihood[{rec.name}]", lambda spec: _inputs(rec, spec, spec.shape),
                 lambda lib, spec, t: (getattr(lib, rec.function)(t["p"], t["x"], **_settings(rec, spec)),),
                 lambda spec: 1, (rec.function, "mixture_log_likelihood"), _options(rec), steep=STEEP)


def elbo_entry(rec):
    """``elbo_loss`` on the record: (loss,)."""
    def tensors(spec):
        mu, logvar = normal((spec.B, 3), spec.torch_dtype), normal((spec.B, 3), spec.torch_dtype, 0.5)
        return dict(_inputs(rec, spec, spec.shape), mu=(mu, True), logvar=(logvar, True))

    def call(lib, spec, t):
        return (lib.elbo_loss(t["p"], t["x"], t["mu"], t["logvar"], reduction=spec.option("reduction"),
                              likelihood=rec.name, **_settings(rec, spec)),)

    def options(B, F, dtype):
        return dict(_options(rec)(B, F, dtype), reduction=("mean", "sum", "none"))
    return Entry(f"elbo_loss[{rec.name}]", tensors, call, lambda spec: 1, ("elbo_loss", rec.function), options,
                 lambda spec, i: (spec.D + 3) * (spec.B if spec.option("reduction") == "sum" else 1), steep=STEEP)


def iwae_entry(rec):
    """``iwae_loss`` on the record, from K decoder outputs and log ratios: (loss,)."""
    def tensors(spec):
        lr = normal((spec.K, spec.B), torch.float64 if spec.dtype == "float64" else torch.float32, 3.0)
        # K samples' parameters: (K * B, ...) made for the one sample's shape, then split
        p = _params(rec, spec, (spec.K * spec.B, *spec.F)).unflatten(0, (spec.K, spec.B))
        x = cases.targets(rec, cases.x_shape(rec, spec.shape), spec.option("target"), CPU, spec.torch_dtype)
        return {"recon": (p, True), "x": (x, False), "log_ratio": (lr, True)}

    def call(lib, spec, t):
        return (lib.iwae_loss(t["recon"], t["x"], t["log_ratio"], likelihood=rec.name,
                              reduction=spec.option("reduction"), **_settings(rec, spec)),)

    def options(B, F, dtype):
        return dict(_options(rec)(B, F, dtype), reduction=("mean", "sum", "none"))
    return Entry(f"iwae_loss[{rec.name}]", tensors, call, lambda spec: 1, ("iwae_loss", rec.function), options,
                 lambda spec, i: spec.D * spec.K * (spec.B if spec.option("reduction") == "sum" else 1),
                 samples=True, softmax=True, steep=STEEP)


def _sample(rec, lib, spec, t):
    """One draw of the sampler given uniforms ``u`` (B, P, M + C) in the kernel's pixel order
    (params' memory order): the kernel's, or PixelCNN++'s from the same uniforms."""
    (u,), p = t["u"], t["p"]  # u: the kernel's test input, read as dense (B, P, M + C), not laid out
    m = _settings(rec, spec)["num_mixtures"]
    if lib is fastvae:
        return (fastvae.kernels.dmol_sample(p, m, 1, uniforms=u),)
    pixel_dims = tuple(range(2, p.dim()))
    # the pixels' dims as the kernel walks them: params' memory order (_launch.column_order) without C
    order = tuple(d for d in _launch.memory_order(p) if d != 1)
    u = u.reshape(p.shape[0], *(p.shape[d] for d in order), u.shape[-1])
    u = u.permute(0, *(1 + order.index(d) for d in pixel_dims), u.dim() - 1)
    return (sample_from_uniforms(p, m, 1, u[..., :m], u[..., m:]),)


def sampler_entry(rec):
    """The sampler, against PixelCNN++'s given the same uniforms: (x,), no gradient."""
    def tensors(spec):
        t = _inputs(rec, spec, spec.shape)
        p = t["p"][0]
        C = cases.x_shape(rec, spec.shape)[1]
        pixels = p[0, 0].numel()
        u = torch.rand(spec.B, pixels, _settings(rec, spec)["num_mixtures"] + C)
        return {"p": (p, False), "u": ((u,), False)}
    def call(lib, spec, t):
        return _sample(rec, lib, spec, t)
    return Entry(f"sample[{rec.name}]", tensors, call, lambda spec: 1, ("sample_discretized_logistic_mixture",),
                 lambda B, F, dtype: {"values": ("ordinary", "extreme")}, dtypes=("float32", "float64"))


def entries():
    return [make(rec) for rec in likelihoods.records() if rec.layout is not None
            for make in (likelihood_entry, elbo_entry, iwae_entry, sampler_entry)]
