"""What the differential fuzzing draws (``tests/ops/test_fuzz_ops.py``): one entry per public op
in ``entries()``, each likelihood of the registry included through ``likelihood_cases``, and the
strategy that draws a case (``Spec``) for an entry: the batch B from 1 up, row shapes of one to
three dims (lengths 1, primes, and non-multiples of every tile the launchers choose), dtypes, each
input's memory layout (``fuzz_check.LAYOUTS``), each output's upstream gradient, ordinary or
extreme values, the interpreter's tiles or a GPU's, and the entry's own options.

A new op is one ``Entry`` in ``entries()`` (its inputs, its call written once against ``lib``,
``fastvae`` or ``fastvae.reference``, and what it covers); a new likelihood record is fuzzed as
it is (its likelihood, its ELBO, its K-sample bound) once ``likelihood_cases`` makes its inputs.
A failing case prints as ``Spec(...)``: add it to ``fuzz_regressions.REGRESSIONS`` so it is run
every time.
"""

from dataclasses import dataclass

import fuzz_mixture_cases
import likelihood_cases as cases
import torch
from hypothesis import strategies as st

from fastvae import likelihoods

import fuzz_count_cases
from fuzz_base import (
    BATCHES,
    CPU,
    dataclass_replace,
    Entry,
    normal,
    ROW_LENGTHS,
    SAMPLES,
    SMALL_DIMS,
    Spec,
    sprinkle,
    UPSTREAMS,
)
from fuzz_check import layouts

# --------------------------------------------------------------------------- the Gaussian ops

MU_EXTREMES = (10.0, -10.0, 100.0, -100.0, 0.0)
LOGVAR_EXTREMES = (-30.0, 30.0, -20.0, 20.0, 0.0, 1e-4, -1e-4, 1e-7)  # the documented [-30, 30]


def _gaussian_tensors(spec, eps_shape=None):
    dt, shape, extreme = spec.torch_dtype, spec.shape, spec.option("values") == "extreme"
    mu, logvar = normal(shape, dt), normal(shape, dt, 0.5)
    if extreme:
        mu, logvar = sprinkle(mu, MU_EXTREMES), sprinkle(logvar, LOGVAR_EXTREMES)
    out = {"mu": (mu, True), "logvar": (logvar, True)}
    if spec.option("prior") == "learned" and not spec.option("path"):  # a hierarchy's p(z_l | z_<l)
        pmu, plv = normal(shape, dt), normal(shape, dt, 0.5)
        if extreme:
            pmu, plv = sprinkle(pmu, MU_EXTREMES), sprinkle(plv, LOGVAR_EXTREMES)
        out.update(prior_mu=(pmu, True), prior_logvar=(plv, True))
    if spec.option("noise", "given") == "given":
        out["eps"] = (normal(eps_shape or shape, dt), False)
    else:
        out["eps"] = (None, False)
    return out


def _probe_kl(spec):
    # the noise reparameterize_kl draws for this shape and seed: z of mu = 0, logvar = 0
    import fastvae

    dt = torch.float64 if spec.dtype == "float64" else torch.float32
    zeros = torch.zeros(spec.shape, dtype=dt)
    return fastvae.reparameterize_kl(zeros, zeros)[0]


def _probe_iw(spec):
    import fastvae

    dt = torch.float64 if spec.dtype == "float64" else torch.float32
    zeros = torch.zeros(spec.shape, dtype=dt)
    return fastvae.reparameterize_iw(zeros, zeros, spec.K)[0]


def _noise_options(B, F, dtype):
    return {"noise": ("given", "drawn"), "values": ("ordinary", "extreme")}


PRIORS = ("standard", "learned")  # N(0, I), or N(prior_mu, exp(prior_logvar)) (option ``prior``)


def _prior(t):
    """The prior's keyword arguments (none for the standard normal)."""
    return {k: t[k] for k in ("prior_mu", "prior_logvar") if k in t}


@dataclass(frozen=True)
class GaussianEntry(Entry):
    """An op whose first output has the inputs' dtype (z) and whose others are sums."""

    first_is_z: bool = True

    def out_dtype(self, spec, i):
        return spec.torch_dtype if (i == 0 and self.first_is_z) else Entry.out_dtype(self, spec, i)

    def out_scale(self, spec, i):
        return 1.0 if (i == 0 and self.first_is_z) else Entry.out_scale(self, spec, i)


GAUSSIAN_ENTRIES = (
    GaussianEntry("reparameterize_kl", _gaussian_tensors,
                  lambda lib, spec, t: lib.reparameterize_kl(t["mu"], t["logvar"], eps=t["eps"], **_prior(t)),
                  lambda spec: 2, ("reparameterize_kl",), lambda B, F, dtype: dict(_noise_options(B, F, dtype),
                                                                                   prior=PRIORS), noise=_probe_kl),
    GaussianEntry("reparameterize", _gaussian_tensors,
                  lambda lib, spec, t: (lib.reparameterize(t["mu"], t["logvar"], eps=t["eps"]),),
                  lambda spec: 1, ("reparameterize",), _noise_options, noise=_probe_kl),
    GaussianEntry("gaussian_kl", lambda spec: {k: v for k, v in _gaussian_tensors(spec).items() if k != "eps"},
                  lambda lib, spec, t: (lib.gaussian_kl(t["mu"], t["logvar"], **_prior(t)),),
                  lambda spec: 1, ("gaussian_kl",), lambda B, F, dtype: {"values": ("ordinary", "extreme"),
                                                                         "prior": PRIORS},
                  first_is_z=False),
    GaussianEntry("reparameterize_iw", lambda spec: _gaussian_tensors(spec, (spec.K, *spec.shape)),
                  lambda lib, spec, t: lib.reparameterize_iw(t["mu"], t["logvar"], spec.K, eps=t["eps"],
                                                             path_gradient=spec.option("path"), **_prior(t)),
                  lambda spec: 2, ("reparameterize_iw",),
                  lambda B, F, dtype: dict(_noise_options(B, F, dtype), path=(False, True), prior=PRIORS),
                  noise=_probe_iw, samples=True,
                  extra_grad_scale={"mu": 5.0, "logvar": 5.0, "prior_mu": 5.0, "prior_logvar": 5.0}),
)


# --------------------------------------------------------------------------- the registry's likelihoods

def _targets_and_extra(rec, spec, shape, x_shape=None):
    """Targets of the drawn kind and the record's keyword arguments (likelihood_cases): as
    ``extra0``, ``extra1``, ... in the record's order, their names as ``names``."""
    dt, extreme = spec.torch_dtype, spec.option("values") == "extreme"
    x = cases.targets(rec, x_shape or shape, spec.option("target"), CPU, dt)
    out = {"x": (x, bool(spec.option("x_grad")) and x.is_floating_point() and not rec.counts)}
    form = spec.option("form")
    if form == "sample":  # one logscale per element of every sample (K, B, ...)
        extra = cases.extra(rec, shape, dt, CPU, "element", extreme)
    else:
        extra = cases.extra(rec, x_shape or shape, dt, CPU, form or "shared", extreme, param_shape=shape)
    for i, a in enumerate(extra.values()):
        out[f"extra{i}"] = (a.detach() if isinstance(a, torch.Tensor) else a, True)
    out["names"] = (tuple(extra), False)
    return out


def _params(rec, spec, shape):
    p = cases.params(rec, shape, spec.torch_dtype, CPU)
    if spec.option("values") != "extreme":
        return p
    values = cases.extremes(rec)
    if rec.counts:  # a mean the dtype holds (float16: 1e-8 is 0 and 1e5 inf, outside the support)
        info = torch.finfo(spec.torch_dtype)
        values = tuple(v for v in values if info.tiny <= v <= info.max)
    return sprinkle(p, values)


def _kwargs(rec, t):
    """The record's keyword arguments of a drawn case (``_targets_and_extra``)."""
    return {n: t[f"extra{i}"] for i, n in enumerate(t["names"])}


def _likelihood_options(rec, forms_shape=None, sample_form=False):
    def options(B, F, dtype):
        forms = cases.extra_forms(rec, forms_shape(B, F) if forms_shape else (B, *F))
        out = {"target": cases.target_kinds(rec), "x_grad": (False, True), "values": ("ordinary", "extreme")}
        if forms:
            out["form"] = forms + (("sample",) if sample_form and rec.has_scale else ())
        return out
    return options


def likelihood_entry(rec):
    """The record's log-likelihood: (ll,)."""
    def tensors(spec):
        return dict(p=(_params(rec, spec, spec.shape), True), **_targets_and_extra(rec, spec, spec.shape))
    return Entry(f"likelihood[{rec.name}]", tensors,
                 lambda lib, spec, t: (getattr(lib, rec.function)(t["p"], t["x"], **_kwargs(rec, t)),),
                 lambda spec: 1, (rec.function,), _likelihood_options(rec))


LATENTS = (1, 4, 17)


def elbo_entry(rec):
    """``elbo_loss`` on the record: (loss,) or, with return_terms, (loss, ll, kl)."""
    def tensors(spec):
        L = spec.option("latent")
        mu, logvar = normal((spec.B, L), spec.torch_dtype), normal((spec.B, L), spec.torch_dtype, 0.5)
        return fuzz_count_cases.softmax_decoder(spec, dict(p=(_params(rec, spec, spec.shape), True), mu=(mu, True),
                                           logvar=(logvar, True), **_targets_and_extra(rec, spec, spec.shape)))

    def call(lib, spec, t):
        kw = dict(beta=spec.option("beta"), reduction=spec.option("reduction"), return_terms=spec.option("terms"),
                  likelihood=rec.name, **_kwargs(rec, t))
        if spec.option("kl") == "kl=":
            out = lib.elbo_loss(t["p"], t["x"], kl=lib.gaussian_kl(t["mu"], t["logvar"]), **kw)
        else:
            out = lib.elbo_loss(t["p"], t["x"], t["mu"], t["logvar"], **kw)
        return tuple(out) if spec.option("terms") else (out,)

    def options(B, F, dtype):
        return dict(_likelihood_options(rec)(B, F, dtype), latent=LATENTS, reduction=("mean", "sum", "none"),
                    beta=(1.0, 0.7, 0.0), kl=("mu, logvar", "kl="), terms=(False, True),
                    decoder=fuzz_count_cases.decoders(rec, F))

    def sums(spec, i):
        n = spec.D + spec.option("latent")
        return n * spec.B if (i == 0 and spec.option("reduction") == "sum") else n
    return Entry(f"elbo_loss[{rec.name}]", tensors, call, lambda spec: 3 if spec.option("terms") else 1,
                 ("elbo_loss", "gaussian_kl", rec.function), options, sums)


def _iw_options(rec):
    base = _likelihood_options(rec, sample_form=True)
    return lambda B, F, dtype: dict(base(B, F, dtype), reduction=("mean", "sum", "none"))


def iwae_entry(rec):
    """``iwae_loss`` on the record, from K decoder outputs and log ratios: (loss,)."""
    def tensors(spec):
        K, B = spec.K, spec.B
        lr = normal((K, B), torch.float64 if spec.dtype == "float64" else torch.float32, 3.0)
        if spec.option("values") == "extreme":
            lr = sprinkle(lr, (50.0, -50.0, 1e3, -1e3))
        return dict(recon=(_params(rec, spec, (K, *spec.shape)), True), log_ratio=(lr, True),
                    **_targets_and_extra(rec, spec, (K, *spec.shape), spec.shape))

    def call(lib, spec, t):
        return (lib.iwae_loss(t["recon"], t["x"], t["log_ratio"], likelihood=rec.name,
                              reduction=spec.option("reduction"), **_kwargs(rec, t)),)
    return Entry(f"iwae_loss[{rec.name}]", tensors, call, lambda spec: 1, ("iwae_loss", rec.function),
                 _iw_options(rec), lambda spec, i: spec.D * spec.K * (spec.B if spec.option("reduction") == "sum"
                                                                      else 1), samples=True, softmax=True)


def importance_weighted_entry(rec):
    """The whole K-sample objective: ``reparameterize_iw`` -> a linear decoder -> ``iwae_loss``,
    estimator IWAE or DReG (eager only): (loss,). float32 and float64 only: in half precision
    the decoder's rounded output, compared with a float64 chain that never rounds, cancels in
    ``x - mean`` beyond any fixed tolerance (the half-precision pieces are fuzzed one by one,
    and the whole step under autocast against the reference path in tests/models/)."""
    def tensors(spec):
        L = spec.option("latent")
        out = _gaussian_tensors(dataclass_replace(spec, F=(L,)), (spec.K, spec.B, L))
        out["W"] = (normal((L, spec.D), spec.torch_dtype, 0.7), True)
        return dict(out, **_targets_and_extra(rec, spec, (spec.K, *spec.shape), spec.shape))

    def call(lib, spec, t):
        K, B, dreg = spec.K, spec.B, spec.option("estimator") == "dreg"
        z, lr = lib.reparameterize_iw(t["mu"], t["logvar"], K, eps=t["eps"], path_gradient=dreg)
        recon = (z.reshape(K * B, -1) @ t["W"]).reshape(K, *spec.shape)
        recon = recon.exp() if rec.counts else recon  # a count likelihood's mean is positive
        return (lib.iwae_loss(recon, t["x"], lr, likelihood=rec.name, z=z if dreg else None,
                              estimator=spec.option("estimator"), reduction=spec.option("reduction"),
                              **_kwargs(rec, t)),)

    def options(B, F, dtype):
        return dict(_iw_options(rec)(B, F, dtype), latent=LATENTS, estimator=("iwae", "dreg"), noise=("given",),
                    values=("ordinary",))
    return Entry(f"importance_weighted[{rec.name}]", tensors, call, lambda spec: 1,
                 ("reparameterize_iw", "iwae_loss", rec.function), options,
                 lambda spec, i: spec.D * spec.K * (spec.B if spec.option("reduction") == "sum" else 1),
                 dtypes=("float32", "float64"), samples=True,
                 extra_grad_scale={"mu": 10.0, "logvar": 10.0, "W": 10.0}, softmax=True)


# --------------------------------------------------------------------------- the table

def entries():
    """Every fuzzed op by name: the Gaussian ops, then per likelihood record its
    log-likelihood, its ELBO, its K-sample bound and the whole importance-weighted objective,
    then the softmax form of each count record (``fuzz_count_cases``) and the entries of a record
    whose parameters have their own layout (``fuzz_mixture_cases``)."""
    table = {e.name: e for e in GAUSSIAN_ENTRIES}
    for rec in likelihoods.records():
        if rec.layout is not None:
            continue
        for make in (likelihood_entry, elbo_entry, iwae_entry, importance_weighted_entry):
            e = make(rec)
            table[e.name] = e
    table.update((e.name, e) for e in fuzz_count_cases.entries() + fuzz_mixture_cases.entries())
    return table


# --------------------------------------------------------------------------- the strategy

def _row_shapes(max_elems, only_flat=False):
    flat = [(d,) for d in ROW_LENGTHS if d <= max_elems]
    if only_flat:
        return st.sampled_from(flat)
    two = [(a, d) for a in (1, 2, 3, 5) for d in (1, 3, 16, 17, 33, 100) if a * d <= max_elems]
    images = [(c, h, w) for c in (1, 2, 3) for h in SMALL_DIMS for w in SMALL_DIMS if c * h * w <= max_elems]
    return st.one_of(st.sampled_from(flat), st.sampled_from(two), st.sampled_from(images))


@st.composite
def specs(draw, entry, max_elems=2048):
    """A case of ``entry`` whose inputs hold at most about ``max_elems`` elements per sample."""
    B = draw(st.sampled_from(BATCHES))
    F = draw(_row_shapes(max(1, max_elems // B), entry.flat))
    K = draw(st.sampled_from(SAMPLES)) if entry.samples else 1
    dtype = draw(st.sampled_from(entry.dtypes))
    options = tuple((k, draw(st.sampled_from(v))) for k, v in sorted(entry.options(B, F, dtype).items()))
    spec = Spec(entry.name, B, F, dtype, draw(st.integers(0, 2**31 - 1)), K,
                draw(st.sampled_from(("interpreter", "gpu"))), options)
    made = entry.tensors(spec)
    lays = tuple((n, draw(st.sampled_from(layouts(tuple(t.shape)))))
                 for n, (t, _) in sorted(made.items()) if isinstance(t, torch.Tensor))
    ups = tuple(draw(st.sampled_from(UPSTREAMS)) for _ in range(entry.outputs(spec)))
    return dataclass_replace(spec, layouts=lays, upstream=ups)
