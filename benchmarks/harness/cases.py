"""What is measured: the cases, their inputs, the least bytes each must move, and the sweeps.

Adding a case is adding one ``Case`` to ``CASES`` below, with its inputs builder and forward
function defined just above it:

* ``name``, ``modes`` (of ``fwd``, ``bwd``, ``fwd+bwd``) and ``what`` (the timed code, one line);
* ``inputs(config, device) -> Inputs``: the tensor arguments (those in ``wrt`` requiring grad),
  the gradients of the outputs that a loss would send back, and fixed noise for the check (or
  None when the op draws none);
* ``forward(lib, *args, eps=None)``: the computation, written once against ``lib``, which is
  ``fastvae.reference`` for ``eager`` and ``compile`` and ``fastvae`` for ``fastvae``;
* ``outputs`` and ``grads``: the names of its outputs and of the ``wrt`` arguments, for messages;
  ``noise_free``: the values that do not depend on the noise (checked on the timed path too);
* ``least_bytes``: per mode, the formula's text (it goes into the JSON) and
  ``f(config, e, t, B)`` (e, t: bytes per float input and target element, B: batch);
* ``sweeps``: per sweep (``gpu``, ``gpu_quick``, ``cpu``, ``cpu_quick``) its families, the
  Config fields other than batch and dtype.

Nothing else changes: ``--only``, the equality checks, the timing, the table, the JSON, the
Markdown, the plots and ``test_bench.py`` (pytest-benchmark) all go through ``CASES``. A case with a new
kind of size (a new ``Config`` field) also adds that key to every JSON record. A case that is not
one fused call (as the training step) brings its own ``build`` and ``impls``.
"""

import torch

from . import train_step
from .case_types import Case, Config, DTYPES, Inputs, TRAIN_IMPLS
from .count_cases import COUNT_CASES
from .hierarchy_cases import HIERARCHY_CASES

# --------------------------------------------------------------------------- inputs and forwards


def _randn(shape, dtype, dev, scale=1.0, grad=False):
    t = torch.randn(shape, dtype=dtype, device=dev)
    return (t.mul_(scale) if scale != 1.0 else t).requires_grad_(grad)


def _gaussian_inputs(c, dev):
    dt, B, L = DTYPES[c.dtype], c.batch, c.latent
    mu, logvar = _randn((B, L), dt, dev, grad=True), _randn((B, L), dt, dev, 0.5, grad=True)
    # grad_z: what a decoder sends back to z; grad_kl = 1: kl.sum()
    upstream = (_randn((B, L), dt, dev), torch.ones(B, device=dev))
    return Inputs((mu, logvar), (mu, logvar), upstream, _randn((B, L), dt, dev))


def _gaussian_fwd(lib, mu, logvar, eps=None):
    return lib.reparameterize_kl(mu, logvar, eps=eps)


def _logits_and_targets(c, dev, samples=()):
    """Logits (*samples, B, ...) and targets (B, ...): (B, D) or (B, C, H, W) images."""
    dt, shape = DTYPES[c.dtype], (c.batch, *c.example_shape())
    logits = _randn((*samples, *shape), dt, dev, 3.0, grad=True)
    if c.targets == "uint8":  # binarized data, one byte per element
        return logits, torch.randint(0, 2, shape, dtype=torch.uint8, device=dev)
    return logits, torch.rand(shape, dtype=dt, device=dev)  # soft targets in the logits' dtype


def _bernoulli_inputs(c, dev):
    logits, x = _logits_and_targets(c, dev)
    # upstream 1 per row: what ll.sum().backward() sends
    return Inputs((logits, x), (logits,), (torch.ones(c.batch, device=dev),), None)


def _bernoulli_fwd(lib, logits, x, eps=None):
    return (lib.bernoulli_log_likelihood(logits, x),)


def _cb_fwd(lib, logits, x, eps=None):
    return (lib.continuous_bernoulli_log_likelihood(logits, x),)


def _gaussian_ll_inputs(c, dev):
    mean, x = _logits_and_targets(c, dev)
    logscale = torch.full((), -1.0, device=dev, requires_grad=True)  # a learned scalar, as a model's
    return Inputs((mean, x, logscale), (mean, logscale), (torch.ones(c.batch, device=dev),), None)


def _gaussian_ll_fwd(lib, mean, x, logscale, eps=None):
    return (lib.gaussian_log_likelihood(mean, x, logscale),)


def _iw_inputs(c, dev):
    K, L = c.samples, c.latent
    logits, x = _logits_and_targets(c, dev, samples=(K,))
    g = _gaussian_inputs(c, dev)
    mu, logvar = g.args
    grad_z = _randn((K, c.batch, L), DTYPES[c.dtype], dev)  # what the decoder sends back to z
    eps = _randn((K, c.batch, L), DTYPES[c.dtype], dev)
    return Inputs((logits, x, mu, logvar), (logits, mu, logvar), (torch.ones((), device=dev), grad_z), eps)


def _iwae_fwd(lib, logits, x, mu, logvar, eps=None):
    # the decoder's logits for the K samples stand in as an input (the decoder is not timed)
    z, log_ratio = lib.reparameterize_iw(mu, logvar, logits.shape[0], eps=eps)
    return lib.iwae_loss(logits, x, log_ratio), z


def _dreg_fwd(lib, logits, x, mu, logvar, eps=None):
    z, log_ratio = lib.reparameterize_iw(mu, logvar, logits.shape[0], eps=eps, path_gradient=True)
    return lib.iwae_loss(logits, x, log_ratio, z=z, estimator="dreg"), z


def _elbo_inputs(c, dev):
    logits, x = _logits_and_targets(c, dev)
    g = _gaussian_inputs(c, dev)
    mu, logvar = g.args
    # loss.backward() sends 1 to the loss; the decoder sends grad_z to z
    return Inputs((logits, x, mu, logvar), (logits, mu, logvar),
                  (torch.ones((), device=dev), g.upstream[0]), g.eps)


def _elbo_fwd(lib, logits, x, mu, logvar, eps=None):
    # the way a model uses it: z and kl in one call, the kl handed to the loss
    z, kl = lib.reparameterize_kl(mu, logvar, eps=eps)
    return lib.elbo_loss(logits, x, kl=kl), z


# --------------------------------------------------------------------------- the cases

# Least bytes: every input read once, every output written once. The per-row (B,) results are
# float32 (4 bytes). "fwd+bwd" of the Gaussian needs both passes (the upstream gradient only
# exists after the forward); the Bernoulli gradient can be formed in the forward pass, so its
# "fwd+bwd" reads logits and targets once.
# Sweeps: families (everything but the batch), per sweep. Not a full product of all axes: the
# latent size barely matters next to D for the whole loss.
ALL_MODES = ("fwd", "bwd", "fwd+bwd")
# any per-row likelihood (the fused kernel is one for all three): the Gaussian's learned scalar
# logscale adds a few bytes per row block, not counted
LL_BYTES = {
    "fwd": ("read logits (B*D), targets (B*D, 1 byte for uint8); write ll (B, float32)",
            lambda c, e, t, B: B * (c.elements() * (e + t) + 4)),
    "bwd": ("read logits, targets, grad_ll (B, float32); write grad_logits (B*D)",
            lambda c, e, t, B: B * (c.elements() * (2 * e + t) + 4)),
    "fwd+bwd": ("read logits and targets once; write grad_logits once; ll and grad_ll (B, float32)",
                lambda c, e, t, B: B * (c.elements() * (2 * e + t) + 8))}
IW_BYTES = {"fwd+bwd": (
    "reparameterize_iw fwd+bwd (mu, logvar read twice; z written, grad_z read: K*B*L each; grad_mu, grad_logvar "
    "written; log_ratio written and its gradient read: K*B float32) + logits (K*B*D) read once, targets (B*D) "
    "read once for all K, grad_logits written once",
    lambda c, e, t, B: B * (c.latent * e * (6 + 2 * c.samples) + 8 * c.samples)
    + B * c.elements() * (2 * c.samples * e + t))}
FLOAT_LL = [dict(dim=784, targets="float"), dict(image="3x64x64", targets="float")]
LL_SWEEPS = {"gpu": FLOAT_LL, "gpu_quick": FLOAT_LL, "cpu": FLOAT_LL, "cpu_quick": FLOAT_LL[:1], "small": FLOAT_LL[:1]}
IW_FAMILY = dict(dim=784, latent=64, targets="uint8")
IW_SWEEPS = {"gpu": [dict(samples=K, **IW_FAMILY) for K in (5, 50)],
             "gpu_quick": [dict(samples=K, **IW_FAMILY) for K in (5, 50)],
             "cpu": [dict(samples=K, **IW_FAMILY) for K in (5, 50)],
             "cpu_quick": [dict(samples=5, **IW_FAMILY)], "small": [dict(samples=5, **IW_FAMILY)]}
IW_BATCHES = {"gpu": [1024, 4096, 16384], "gpu_quick": [4096], "cpu": [256, 1024], "cpu_quick": [256],
              "small": [64, 256, 1024, 4096]}
TRAIN_BATCHES = {"gpu": [256, 1024, 4096, 16384, 65536], "gpu_quick": [4096], "cpu": [256, 1024],
                 "cpu_quick": [256], "small": [64, 256, 1024, 4096]}

CASES = {case.name: case for case in [
    Case("reparameterize_kl", ALL_MODES, "z, kl = reparameterize_kl(mu, logvar); backward from z and kl.sum()",
         inputs=_gaussian_inputs, forward=_gaussian_fwd, outputs=("z", "kl"), grads=("mu", "logvar"),
         noise_free=("kl", "grad mu"),
         least_bytes={
             "fwd": ("read mu, logvar (B*L each); write z (B*L), kl (B, float32)",
                     lambda c, e, t, B: B * (3 * c.latent * e + 4)),
             "bwd": ("read mu, logvar, grad_z (B*L each), grad_kl (B, float32); write grad_mu, grad_logvar",
                     lambda c, e, t, B: B * (5 * c.latent * e + 4)),
             "fwd+bwd": ("fwd + bwd", lambda c, e, t, B: B * (8 * c.latent * e + 8))},
         sweeps={"gpu": [dict(latent=L) for L in (32, 64, 128)], "gpu_quick": [dict(latent=64)],
                 "cpu": [dict(latent=32), dict(latent=128)], "cpu_quick": [dict(latent=64)],
                 "small": [dict(latent=64)]}),
    Case("bernoulli_ll", ALL_MODES, "ll = bernoulli_log_likelihood(logits, x); backward as ll.sum()",
         inputs=_bernoulli_inputs, forward=_bernoulli_fwd, outputs=("ll",), grads=("logits",),
         least_bytes=LL_BYTES,
         sweeps={"gpu": [dict(dim=D, targets=t) for D in (784, 3072, 12288) for t in ("float", "uint8")],
                 "gpu_quick": [dict(dim=784, targets="float"), dict(dim=784, targets="uint8")],
                 "cpu": [dict(dim=D, targets=t) for D in (784, 3072) for t in ("float", "uint8")],
                 "cpu_quick": [dict(dim=784, targets="uint8")], "small": [dict(dim=784, targets="uint8")]}),
    Case("continuous_bernoulli_ll", ALL_MODES,
         "ll = continuous_bernoulli_log_likelihood(logits, x); backward as ll.sum()",
         inputs=_bernoulli_inputs, forward=_cb_fwd, outputs=("ll",), grads=("logits",),
         least_bytes=LL_BYTES, sweeps=LL_SWEEPS),
    Case("gaussian_ll", ALL_MODES,
         "ll = gaussian_log_likelihood(mean, x, logscale) with a learned scalar logscale; backward as ll.sum()",
         inputs=_gaussian_ll_inputs, forward=_gaussian_ll_fwd, outputs=("ll",), grads=("mean", "logscale"),
         least_bytes=LL_BYTES, sweeps=LL_SWEEPS),
    Case("iwae_loss", ("fwd+bwd",),
         "z, lr = reparameterize_iw(mu, logvar, K); loss = iwae_loss(logits, x, lr); backward from loss and z",
         inputs=_iw_inputs, forward=_iwae_fwd, outputs=("loss", "z"), grads=("logits", "mu", "logvar"),
         least_bytes=IW_BYTES, sweeps=IW_SWEEPS, batches=IW_BATCHES),
    Case("dreg_loss", ("fwd+bwd",),
         "z, lr = reparameterize_iw(mu, logvar, K, path_gradient=True); "
         "loss = iwae_loss(logits, x, lr, z=z, estimator='dreg'); backward from loss and z",
         inputs=_iw_inputs, forward=_dreg_fwd, outputs=("loss", "z"), grads=("logits", "mu", "logvar"),
         least_bytes=IW_BYTES, sweeps=IW_SWEEPS, batches=IW_BATCHES),
    Case("elbo_loss", ("fwd+bwd",),
         "z, kl = reparameterize_kl(mu, logvar); loss = elbo_loss(logits, x, kl=kl); backward from loss and z",
         inputs=_elbo_inputs, forward=_elbo_fwd, outputs=("loss", "z"), grads=("logits", "mu", "logvar"),
         noise_free=("loss", "grad logits", "grad mu"),
         least_bytes={
             "fwd+bwd": ("bernoulli_ll fwd+bwd (D) + reparameterize_kl fwd+bwd (L)",
                         lambda c, e, t, B: B * (c.elements() * (2 * e + t) + 8) + B * (8 * c.latent * e + 8))},
         sweeps={"gpu": [dict(dim=784, latent=64, targets="uint8"), dict(dim=784, latent=64, targets="float"),
                         dict(dim=3072, latent=64, targets="uint8"), dict(dim=12288, latent=64, targets="uint8"),
                         dict(dim=784, latent=32, targets="uint8"), dict(dim=784, latent=128, targets="uint8")],
                 "gpu_quick": [dict(dim=784, latent=64, targets="uint8"), dict(dim=784, latent=64, targets="float")],
                 "cpu": [dict(dim=784, latent=64, targets="uint8"), dict(dim=3072, latent=64, targets="uint8")],
                 "cpu_quick": [dict(dim=784, latent=64, targets="uint8")],
                 "small": [dict(dim=784, latent=64, targets="uint8")]}),
    Case("train_step", ("train",),
         "opt.zero_grad(); model.loss(x).backward(); opt.step() with Adam; uint8 1x28x28 images",
         outputs=("loss",), impls=TRAIN_IMPLS, build=train_step.train_variants, skip=train_step.skip,
         dtypes=("float32",), batches=TRAIN_BATCHES,
         sweeps={"gpu": [dict(model="mlp"), dict(model="conv")], "gpu_quick": [dict(model="mlp"), dict(model="conv")],
                 "cpu": [dict(model="mlp"), dict(model="conv")], "cpu_quick": [dict(model="mlp")],
                 "small": [dict(model="mlp")]}),
]}

CASES.update({case.name: case for case in COUNT_CASES})
CASES.update({case.name: case for case in HIERARCHY_CASES})

# The README's headline, the one list of it: the whole loss (elbo_loss) and reparameterize_kl,
# forward+backward, at B = 65536, D = 784, latent 64, float32 and bfloat16 logits, uint8 and
# float targets. The report's first table and the GPU check's headline stage both use it; both
# the GPU sweep and its quick version (run.py --quick) contain it.
HEADLINE = ([(Config("elbo_loss", 65536, dt, dim=784, latent=64, targets=t), "fwd+bwd")
             for dt in ("float32", "bfloat16") for t in ("uint8", "float")]
            + [(Config("reparameterize_kl", 65536, dt, latent=64), "fwd+bwd") for dt in ("float32", "bfloat16")])
# Beside the headline in the report's first table (not in the GPU check's headline stage): the
# launch-bound end of the same op, where host time rather than bytes decides the speed.
LAUNCH_BOUND = [(Config("reparameterize_kl", 256, "float32", latent=64), "fwd+bwd")]

# --------------------------------------------------------------------------- the sweeps

# batch sizes of a fused op per sweep; the "gpu" sweep grows them until the memory is full
OP_BATCHES = {"gpu_quick": [256, 65536], "cpu": [256, 1024, 4096, 16384], "cpu_quick": [256, 2048],
              "small": [64, 256, 1024, 4096, 8192]}
DEFAULT_DTYPES = {"gpu": ["float32", "bfloat16"], "gpu_quick": ["float32", "bfloat16"],
                  "cpu": ["float32", "bfloat16"], "cpu_quick": ["float32"], "small": ["float32"]}



def sweep_name(dev, quick, small=False):
    if small:
        return "small"
    return ("gpu" if dev.type == "cuda" else "cpu") + ("_quick" if quick else "")


def least_bytes(c, mode):
    return CASES[c.op].nbytes(c, mode)


def least_bytes_formulas():
    """'op mode' -> the formula's text, for the JSON."""
    return {f"{name} {mode}": text for name, case in CASES.items() for mode, (text, _) in case.least_bytes.items()}


def gpu_batches(op, family, dtype, memory_bytes):
    """256, 1024, ... while the least bytes of fwd+bwd fit in 60% of the GPU's memory (the run
    also stops a family at the first size where any implementation runs out of memory)."""
    mode = CASES[op].modes[-1]
    out = []
    for k in range(16):
        c = Config(op, 256 * 4**k, dtype, **family)
        if least_bytes(c, mode) > 0.6 * memory_bytes:
            break
        out.append(c.batch)
    return out


def configs(op, sweep, dtypes, memory_bytes):
    """The configurations of ``op`` in ``sweep`` order: family by family, batch ascending."""
    case, out = CASES[op], []
    for dtype in dtypes:
        if case.dtypes is not None and dtype not in case.dtypes:
            continue
        for fam in case.sweeps[sweep]:
            if case.batches is not None:
                batches = case.batches[sweep]
            elif sweep == "gpu":
                batches = gpu_batches(op, fam, dtype, memory_bytes)
            else:
                batches = OP_BATCHES[sweep]
            out.append([Config(op, B, dtype, **fam) for B in batches])
    return out
