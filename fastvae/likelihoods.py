"""The registry of likelihoods p(x | decoder output): one record per likelihood, the one place
where their names, kernel codes and conventions are written. Every other module asks here:
``get(name)`` for a record (an unknown name is a ``ValueError`` listing the known ones),
``names()`` for the list, ``spec.has_scale`` and the other fields for what differs.

A record says what the decoder outputs (``param``), whether it takes a logscale, what uint8
targets mean (0/1, or 8-bit values k/255), which float targets it supports (for
``validate_args``), which kernel computes it (``code``, a ``fastvae.kernels.modes`` KIND),
the name of its function (the same in ``fastvae`` and, as its plain PyTorch twin, in
``fastvae.reference``), and, for models, the distribution's mean and the output bias that
makes an untrained model predict given means (``fastvae.decoders``).

Adding a likelihood: a kernel branch (``kernels/likelihood.py``), one record here, its function
in ``fastvae/ops/likelihood.py`` and its twin in ``fastvae/reference.py``, tests and a benchmark
case (CONTRIBUTING.md).
"""

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from . import decoders
from .kernels import modes

# what a uint8 target holds
BINARY = "0/1"      # 0 or 1 (binarized data: one byte per pixel)
EIGHT_BIT = "k/255"  # an 8-bit value k, read as k / 255 in [0, 1]
COUNT = "count"      # a count k (small count matrices kept as bytes)

# which float targets a likelihood supports (checked with validate_args=True)
UNIT_INTERVAL = "[0, 1]"
FINITE = "finite"
COUNTS = "non-negative integers"

REQUIRED = "required"  # an argument without a default
# the keyword arguments the losses pass on to a likelihood, and the kernel operand each one is
# (``s``: the logscale or log theta, ``q``: zero-inflation logits; the library selects the softmax form)
OPERANDS = {"logscale": "s", "log_theta": "s", "zero_inflation_logits": "q", "log_library": "library"}
SOFTMAX_FUNCTION = "softmax_negative_binomial_log_likelihood"


@dataclass(frozen=True)
class Likelihood:
    """One likelihood's record (see the module docstring)."""

    name: str                  # as likelihood="..." takes it
    aliases: tuple             # other spellings accepted (the command line's, with hyphens)
    code: int                  # ``kernels.modes`` KIND of the elementwise likelihood kernel
    function: str              # fastvae.<function>, and its twin fastvae.reference.<function>
    param: str                 # what the decoder outputs, as messages name it
    uint8: str                 # what uint8 targets hold: BINARY, EIGHT_BIT or COUNT
    support: str               # the float targets it supports: UNIT_INTERVAL, FINITE or COUNTS
    mean: Callable             # decoder output -> the distribution's mean (float32)
    output_bias: Callable      # means (float64, in the support) -> the output that has them (float64)
    summary: str               # one line for --help and messages
    arguments: tuple = ()      # (name, default or REQUIRED): the keyword arguments the losses pass on

    @property
    def counts(self) -> bool:
        """Targets are counts: integer dtypes accepted, no gradient for them."""
        return self.support == COUNTS

    @property
    def has_scale(self) -> bool:
        """Takes a logscale (log standard deviation)."""
        return any(n == "logscale" for n, _ in self.arguments)

    @property
    def uint8_scale(self) -> Optional[float]:
        """What a uint8 target is multiplied by (None: read as it is)."""
        return 1.0 / 255.0 if self.uint8 == EIGHT_BIT else None

    @property
    def cli_name(self) -> str:
        """The command line's spelling (hyphens)."""
        return self.name.replace("_", "-")

    @property
    def title(self) -> str:
        """The name in prose (spaces)."""
        return self.name.replace("_", " ")

    def targets(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Targets as ``dtype`` values of the likelihood's units (uint8 read per ``uint8``)."""
        scale = self.uint8_scale
        if x.dtype == torch.uint8 and scale is not None:
            return x.to(dtype) * scale
        return x.to(dtype)

    def given(self, logscale, likelihood_args: dict) -> dict:
        """The losses' keyword arguments as ``bind`` takes them: ``logscale`` (their own argument,
        ignored by a likelihood without a scale) and the others."""
        return dict(likelihood_args, logscale=logscale) if self.has_scale else dict(likelihood_args)

    def bind(self, given: dict) -> dict:
        """The likelihood's keyword arguments from ``given`` (name -> value; None for one not
        passed), defaults filled in; TypeError for an argument it does not take or one it
        requires that is missing."""
        known = {n for n, _ in self.arguments}
        unknown = sorted(n for n, v in given.items() if n not in known and v is not None)
        if unknown:
            takes = ", ".join(sorted(known)) or "no other arguments"
            raise TypeError(f"the {self.title} likelihood takes {takes}; got {', '.join(unknown)}")
        out = {}
        for n, default in self.arguments:
            value = given.get(n)
            if value is None and default is REQUIRED:
                raise TypeError(f"the {self.title} likelihood needs {n}=")
            # None stands for "not given" where the default is None; elsewhere it is a value
            # (a logscale of None), which the checks refuse
            out[n] = default if value is None and n not in given else value
        return out

    def call(self, recon, x, args: dict, *, fused: bool = True, validate_args: bool = False):
        """log p(x | recon) per row, with ``args`` (``bind``'s), through the fused functions or
        their twins (``fused=False``): the softmax form when a library is given."""
        from . import ops, reference

        lib = ops if fused else reference
        if args.get("log_library") is not None:
            return getattr(lib, SOFTMAX_FUNCTION)(recon, x, args.get("log_theta"), args["log_library"],
                                                  zero_inflation_logits=args.get("zero_inflation_logits"),
                                                  validate_args=validate_args)
        rest = {n: v for n, v in args.items() if n != "log_library"}
        return getattr(lib, self.function)(recon, x, **rest, validate_args=validate_args)

    @property
    def reference(self) -> Callable:
        """The plain PyTorch twin, ``fastvae.reference.<function>``."""
        from . import reference

        return getattr(reference, self.function)

    @property
    def fused(self) -> Callable:
        """The fused function, ``fastvae.<function>``."""
        from . import ops

        return getattr(ops, self.function)


_COUNT_SUMMARY = "counts (e.g. genes per cell); the decoder outputs the mean, or logits with log_library"
_RECORDS = (
    Likelihood("bernoulli", (), modes.BERNOULLI, "bernoulli_log_likelihood", "logits", BINARY,
               UNIT_INTERVAL, decoders.bernoulli_mean, decoders.bernoulli_logits_of,
               "binary data (0/1); the decoder outputs logits"),
    Likelihood("continuous_bernoulli", ("continuous-bernoulli",), modes.CONTINUOUS_BERNOULLI,
               "continuous_bernoulli_log_likelihood", "logits", EIGHT_BIT, UNIT_INTERVAL,
               decoders.continuous_bernoulli_mean, decoders.continuous_bernoulli_logits_of,
               "data in [0, 1] (grey levels); the decoder outputs logits"),
    Likelihood("gaussian", (), modes.GAUSSIAN, "gaussian_log_likelihood", "mean", EIGHT_BIT, FINITE,
               decoders.gaussian_mean, decoders.gaussian_mean_of,
               "real-valued data; the decoder outputs the mean, with a fixed or learned logscale",
               (("logscale", 0.0),)),
    Likelihood("poisson", (), modes.POISSON, "poisson_log_likelihood", "rate", COUNT, COUNTS,
               decoders.gaussian_mean, decoders.gaussian_mean_of, "Poisson " + _COUNT_SUMMARY,
               (("log_library", None),)),
    Likelihood("negative_binomial", ("negative-binomial",), modes.NEGATIVE_BINOMIAL,
               "negative_binomial_log_likelihood", "mean", COUNT, COUNTS, decoders.gaussian_mean,
               decoders.gaussian_mean_of, "overdispersed " + _COUNT_SUMMARY + ", and log_theta",
               (("log_theta", REQUIRED), ("zero_inflation_logits", None), ("log_library", None))),
    Likelihood("zero_inflated_negative_binomial", ("zero-inflated-negative-binomial",), modes.NEGATIVE_BINOMIAL,
               "negative_binomial_log_likelihood", "mean", COUNT, COUNTS, decoders.gaussian_mean,
               decoders.gaussian_mean_of, "overdispersed " + _COUNT_SUMMARY + ", log_theta and dropout logits",
               (("log_theta", REQUIRED), ("zero_inflation_logits", REQUIRED), ("log_library", None))),
)
_BY_NAME = {n: r for r in _RECORDS for n in (r.name, *r.aliases)}
DEFAULT = _RECORDS[0].name
COUNT_DEFAULT = "zero_inflated_negative_binomial"  # scVI's, and fastvae.models.CountVAE's


def names() -> tuple:
    """The likelihoods' names, in the registry's order."""
    return tuple(r.name for r in _RECORDS)


def records() -> tuple:
    """Every record, in the registry's order."""
    return _RECORDS


def get(likelihood) -> Likelihood:
    """The record of ``likelihood`` (its name, an alias, or a record); ValueError otherwise."""
    if isinstance(likelihood, Likelihood):
        return likelihood
    record = _BY_NAME.get(likelihood) if isinstance(likelihood, str) else None
    if record is None:
        raise ValueError(f"likelihood must be one of {', '.join(map(repr, names()))}, got {likelihood!r}")
    return record


def by_code(code: int) -> Likelihood:
    """The (first) record whose kernel code is ``code`` (the custom ops carry the code)."""
    return _BY_CODE[code]


_BY_CODE = {}
for _r in _RECORDS:
    _BY_CODE.setdefault(_r.code, _r)
