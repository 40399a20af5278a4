"""The command line of ``python -m fastvae.train``: the parser, its argument types, and the run
configuration (the parsed settings as saved in ``checkpoint.pt`` and ``summary.json``)."""

import argparse
import math
import os
import sys

import torch

from .. import architectures, likelihoods
from .. import data as fdata
from ..models import ACTIVATIONS
from . import hierarchy


def prog_name():
    """The command's name in usage and error lines: how it was started."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "fastvae-train" if name.startswith("fastvae-train") else "python -m fastvae.train"


# --------------------------------------------------------------------------- argument types

def _widths(text):
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive widths like 400 or 200,200, got {text!r}")
    if any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"widths must be positive, got {text!r}")
    return sizes


def _device(text):
    try:
        dev = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"not a device: {text!r} (e.g. cuda, cuda:1, cpu)")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError("CUDA is not available to this PyTorch build/machine; use --device cpu")
    if dev.type not in ("cuda", "cpu"):
        raise argparse.ArgumentTypeError(f"--device must be cuda or cpu, got {text!r}")
    return text


def _number(kind, low, strict, high=None):
    """argparse type: a finite ``kind`` above ``low`` (``strict``) or at least ``low``, and at
    most ``high`` when given."""
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a{'n' if kind is int else ''} {kind.__name__}, got {text!r}")
        if not math.isfinite(v) or (v <= low if strict else v < low):
            raise argparse.ArgumentTypeError(f"must be a finite number {'>' if strict else '>='} {low}, got {text!r}")
        if high is not None and v > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {text!r}")
        return v
    return parse


def _positive(kind):
    return _number(kind, 0, strict=True)


_non_negative_int = _number(int, 0, strict=False)


def _likelihood(text):
    """--likelihood: a registry name, with hyphens (continuous-bernoulli) or underscores."""
    try:
        return likelihoods.get(text.replace("-", "_")).cli_name
    except ValueError:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(LIKELIHOODS)}, got {text!r}")


def _data(text):
    """--data: a built-in data set's name, or a file or folder fastvae reads (``fdata.READERS``)."""
    if fdata.is_builtin(text):
        return text
    try:
        fdata.reader_for(text)
    except FileNotFoundError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a built-in data set ({', '.join(fdata.DATASETS)}) nor a "
                                         f"file or folder")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))
    return text


def _fraction(text):
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not 0 < v < 0.5:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 0.5, got {text!r}")
    return v


def _size(text):
    """--resize: H x W (64x48) or one number for square images (64)."""
    try:
        sizes = tuple(int(s) for s in text.lower().split("x"))
    except ValueError:
        sizes = ()
    if len(sizes) == 1:
        sizes *= 2
    if len(sizes) != 2 or min(sizes) <= 0:
        raise argparse.ArgumentTypeError(f"expected a size like 64 or 64x48 (height x width), got {text!r}")
    return sizes


def _logscale(text):
    """--logscale: learned, per-pixel, or a finite number (a fixed logscale)."""
    if text in ("learned", "per-pixel"):
        return text
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected learned, per-pixel or a number, got {text!r}")
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"a fixed logscale must be finite, got {text!r}")
    return v
SEED_MAX = 2**32 - 1  # torch and NumPy take it, and so does the per-rank seed derived from it


# --------------------------------------------------------------------------- the parser

class _HelpFormatter(argparse.HelpFormatter):
    """Adds "(default: X)" to an option's help, unless the help already says what the default is
    or there is nothing to show (no default, or a flag that is off)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default is None or action.default is False \
                or action.default is argparse.SUPPRESS or not action.option_strings:
            return text
        return text + " (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """A bad value is one line on stderr and exit status 2 (not argparse's usage block)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser():
    p = _Parser(prog=prog_name(), description="Train a VAE with fastvae's fused ops; see README.md.",
                formatter_class=_HelpFormatter)
    _add_data_arguments(p.add_argument_group("data"))
    _add_model_arguments(p.add_argument_group("model"))
    _add_optimisation_arguments(p.add_argument_group("optimisation"))
    _add_run_arguments(p.add_argument_group("run"))
    return p


def _add_data_arguments(d):
    d.add_argument("--data", type=_data, default="shapes", metavar="{" + ",".join(fdata.DATASETS) + "} or PATH",
                   help="shapes: generated binary shapes, no download; binarized-mnist: the static "
                        "binarization (.npz or .amat); mnist: IDX files, binarized anew every batch; "
                        "synthetic-counts: a generated single-cell count matrix, for the count likelihoods; PATH: "
                        "your own data, " + "; ".join(r.describe for r in fdata.READERS)
                        + " (README.md: what each --likelihood expects)")
    d.add_argument("--data-dir", help="where the data files are (default: $FASTVAE_DATA_DIR)")
    d.add_argument("--download", action="store_true", help="download the data set into --data-dir if missing")
    d.add_argument("--grey", action="store_true",
                   help="mnist: keep the grey levels (no binarization), uniformly dequantized to (k + u)/256, "
                        "for a continuous --likelihood; the test NLL is also given in bits/dim")
    d.add_argument("--image-size", type=int, choices=(28, 64), default=28, help="shapes only")
    d.add_argument("--channels", type=int, choices=(1, 3), default=1, help="shapes only")
    d.add_argument("--genes", type=_positive(int), help="synthetic-counts only: genes per cell (default 2000)")
    d.add_argument("--held-out", type=_fraction, metavar="F",
                   help=f"your own data: the fraction of the examples held out at random for each split the file "
                        f"lacks (validation, test; default {fdata.HELD_OUT})")
    d.add_argument("--resize", type=_size, metavar="HxW",
                   help="a folder of images: resize each to H x W pixels (64 or 64x48; default: all must have "
                        "one size)")
    d.add_argument("--num-train", type=_positive(int), default=None,
                   help="shapes: training images to generate (default 50000); MNIST and your own data: a fixed "
                        "random subset of N")
    d.add_argument("--num-test", type=_positive(int),
                   help="evaluate on a fixed random subset of N test (and validation) examples (default: all)")


def _add_model_arguments(m):
    m.add_argument("--arch", choices=architectures.names(),
                   help="(default: count for a count --likelihood, else mlp) "
                        + "; ".join(f"{a.name}: {a.summary}" for a in architectures.records()))
    m.add_argument("--latent-dim", type=_positive(int),
                   help=f"size of z (default {architectures.LATENT}; {architectures.COUNT_LATENT} for --arch count; "
                        "--arch hierarchical takes --latent-dims)")
    m.add_argument("--hidden", type=_widths,
                   help="mlp and count: hidden widths, e.g. 400 or 200,200 (default 400; count: 128); hierarchical "
                        f"mlp: each level's width, top first, or one for all (default "
                        f"{','.join(map(str, hierarchy.DEFAULT_HIDDEN))})")
    m.add_argument("--conv-channels", type=_widths,
                   help="conv: channels of the stride-2 layers (default 32,64 up to 32 pixels, else 32,32,64,64)")
    m.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu",
                   help="the nonlinearity after each hidden layer (encoder and decoder)")
    m.add_argument("--likelihood", type=_likelihood, default=likelihoods.get(likelihoods.DEFAULT).cli_name,
                   metavar="{" + ",".join(LIKELIHOODS) + "}",
                   help="p(x | z): " + "; ".join(f"{r.cli_name}: {r.summary}" for r in likelihoods.records()))
    m.add_argument("--logscale", type=_logscale,
                   help="gaussian: learned (one shared learned log standard deviation; the default), per-pixel "
                        "(one learned per pixel) or a number (fixed)")
    hierarchy.add_arguments(m)
    m.add_argument("--fused", action=argparse.BooleanOptionalAction, default=True,
                   help="fastvae's fused ops (--no-fused: the same model on fastvae.reference)")
    m.add_argument("--output-bias-init", action=argparse.BooleanOptionalAction, default=True,
                   help="start the decoder's output bias at the logit of the training pixel means")


def _add_optimisation_arguments(o):
    o.add_argument("--batch-size", type=_positive(int), default=128, help="examples per step per process")
    o.add_argument("--lr", type=_positive(float), default=1e-3, help="Adam learning rate at --base-batch-size")
    o.add_argument("--lr-scaling", choices=("sqrt", "linear", "none"), default="sqrt",
                   help="large-batch rule: lr * (global batch / base batch) ** (1/2 | 1 | 0)")
    o.add_argument("--base-batch-size", type=_positive(int), default=128, help="the batch size --lr is meant for")
    o.add_argument("--warmup-steps", type=_non_negative_int, default=0, help="linear learning-rate warm-up")
    o.add_argument("--schedule", choices=("constant", "cosine"), default="constant",
                   help="after warm-up: constant, or cosine decay to 0 at the last step")
    o.add_argument("--epochs", type=_positive(int), default=10, help="passes over the training set")
    o.add_argument("--amp", choices=("none", "bf16"), default="none", help="bf16 autocast for the networks")
    o.add_argument("--beta", type=_number(float, 0.0, strict=False), default=1.0, help="KL weight (beta-VAE)")
    o.add_argument("--kl-warmup", type=_non_negative_int, default=0,
                   help="steps over which the KL weight rises linearly from 0 to --beta")
    o.add_argument("--objective", choices=OBJECTIVES, default="elbo",
                   help="elbo; iwae: the K-sample importance-weighted bound; dreg: the same bound with "
                        "doubly reparameterized encoder gradients")
    o.add_argument("--samples", type=_positive(int),
                   help="K, importance samples per example for --objective iwae or dreg (default 5)")
    o.add_argument("--compile", action="store_true", help="torch.compile the training objective")


def _add_run_arguments(r):
    r.add_argument("--seed", type=_number(int, 0, strict=False, high=SEED_MAX), default=0,
                   help="weights, noise, data order and generated data")
    r.add_argument("--out", default="runs/fastvae", help="output directory")
    r.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    r.add_argument("--save-every", type=_non_negative_int, default=0,
                   help="also checkpoint every N steps (0: at the end of each epoch only)")
    r.add_argument("--stop-after", type=_positive(int), default=None,
                   help="checkpoint and exit after N steps of this invocation (time-sliced jobs); "
                        "--resume continues")
    r.add_argument("--device", type=_device, help="cuda, cuda:N or cpu (default: cuda if available)")
    r.add_argument("--eval-samples", type=_positive(int),
                   help="K importance samples for the test NLL (default 1000 on CUDA, 100 on CPU)")
    r.add_argument("--eval-rows", type=_positive(int),
                   help="(example x sample) rows per decoder call when evaluating (default 65536 for "
                        "28x28 images, proportionally fewer for larger ones: 4181 for 3x64x64)")
    r.add_argument("--log-every", type=_positive(int), default=50, help="steps between progress-bar updates")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--no-plots", action="store_true", help="skip the PNG files")


# --------------------------------------------------------------------------- combinations

LIKELIHOODS = tuple(r.cli_name for r in likelihoods.records())
OBJECTIVES = ("elbo", "iwae", "dreg")


def likelihood_name(args):
    """--likelihood as fastvae names it (continuous-bernoulli -> continuous_bernoulli)."""
    return likelihoods.get(args.likelihood.replace("-", "_")).name


def _names_where(keep):
    # the command-line names of the likelihoods whose record passes ``keep``
    return " or ".join(r.cli_name for r in likelihoods.records() if keep(r))


def check_settings(args):
    """Settings that are each valid but do not go together: a ValueError that says why."""
    spec = likelihoods.get(likelihood_name(args))
    continuous = spec.uint8 != likelihoods.BINARY
    hierarchy.check_settings(args)
    if args.logscale is not None and not spec.has_scale:
        raise ValueError(f"--logscale is for --likelihood {_names_where(lambda r: r.has_scale)}")
    _check_data(args)
    _check_counts(args, spec)
    if args.grey and args.data != "mnist":
        raise ValueError(f"--grey is for --data mnist (grey levels); {args.data} is binary")
    if args.grey and not continuous:
        raise ValueError(f"--grey keeps MNIST's grey levels, which the {spec.title} likelihood cannot model: add "
                         f"--likelihood {_names_where(lambda r: r.uint8 != likelihoods.BINARY)}")
    if continuous and args.data == "mnist" and not args.grey:
        raise ValueError(f"--data mnist binarizes every batch; for its grey levels with --likelihood "
                         f"{args.likelihood} add --grey")
    if args.objective == "elbo":
        if args.samples is not None:
            raise ValueError("--samples is for --objective iwae or dreg (the ELBO takes one sample)")
        return
    if args.beta != 1.0 or args.kl_warmup:
        raise ValueError(f"--beta and --kl-warmup weight the ELBO's KL term; --objective {args.objective} has none")
    if args.objective == "dreg" and args.compile:
        raise ValueError("--objective dreg runs eagerly only; --compile supports --objective elbo and iwae")


def _check_counts(args, spec):
    """The count likelihoods model count matrices (synthetic-counts, your own), and only they do."""
    counts = _names_where(lambda r: r.counts)
    if args.genes is not None and args.data != "synthetic-counts":
        raise ValueError(f"--genes is for --data synthetic-counts, not --data {args.data}")
    if spec.counts and fdata.is_builtin(args.data) and args.data != "synthetic-counts":
        raise ValueError(f"--likelihood {args.likelihood} models counts; --data {args.data} is images: use --data "
                         f"synthetic-counts or your own count matrix (--data PATH)")
    if args.data == "synthetic-counts" and not spec.counts:
        raise ValueError(f"--data synthetic-counts is a count matrix: add --likelihood {counts}")
    if args.arch is not None and architectures.get(args.arch).counts != spec.counts:
        fits = " or ".join(a.name for a in architectures.records() if a.counts == spec.counts)
        raise ValueError(f"--arch {args.arch} does not model the {spec.title} likelihood's data: use --arch {fits}"
                         + ("" if spec.counts else f" (--arch {args.arch} is for --likelihood {counts})"))


def _check_data(args):
    """The data settings against --data: your own data (a path) or a built-in data set."""
    if fdata.is_builtin(args.data):
        if args.held_out is not None or args.resize is not None:
            raise ValueError(f"--held-out and --resize are for your own data (--data PATH), not --data {args.data}")
        return
    given = [flag for flag, value, default in (("--image-size", args.image_size, 28), ("--channels", args.channels, 1),
                                               ("--download", args.download, False), ("--grey", args.grey, False))
             if value != default]
    if given:
        raise ValueError(f"{' and '.join(given)} {'is' if len(given) == 1 else 'are'} for the built-in data sets; "
                         f"--data {args.data} is your own data, read as it is (README.md: what each --likelihood "
                         f"expects)")


def num_samples(args):
    """K of the importance-weighted objectives: --samples, default 5."""
    return args.samples or 5


# --------------------------------------------------------------------------- the run configuration

def run_config(args, world):
    """The settings of this run as JSON-ready values (tuples as lists), with the world size."""
    cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()}
    cfg.update(world_size=world)
    return cfg
