"""The "synthetic-counts" data set: a single-cell count matrix generated from a seed (no files),
realistic enough to train and test a count VAE on.

Cells belong to one of ``types`` cell types, each a sparse expression program over the genes (a
few hundred marker genes raised above a shared, heavy-tailed baseline), and to one of
``batches`` experimental batches, each with its own per-gene multiplicative effect. A cell's
library size is log-normal (median about ``library``, a factor of ~2 either way); its counts are
negative binomial with that mean (``library * softmax(program + batch effect + cell noise)``)
and a per-gene inverse dispersion between 0.5 and 20 (over-dispersed, as real data), plus a few
percent of dropout zeros. Most entries are 0, as in droplet data (about 70% at the defaults).

``make_counts(n, genes, seed=...)`` returns ``(counts, batch, cell_type)``: int32 (n, genes) and
int64 (n,) labels, as NumPy arrays; the splits of ``synthetic_counts_splits`` draw one matrix and
cut it, so the three splits share the genes, programs and batch effects; ``load_counts`` makes
them the ``Dataset`` ``"synthetic-counts"`` (``load_dataset``).

``fit_counts`` is how any count matrix (generated, or your own file) is held: checked to be
non-negative whole numbers and stored in the smallest integer dtype that holds its largest count
(``count_dtype``: uint8, int16 or int32), which the count likelihoods read as they are.
"""

from __future__ import annotations

import numpy as np
import torch

from .._checks import check_int

COUNTS_DEFAULTS = {"genes": 2000, "types": 8, "batches": 2, "library": 3000.0, "dropout": 0.03}
COUNTS_SPLITS = {"train": 8000, "valid": 1000, "test": 1000}


def _programs(rng, genes, types, batches):
    """The per-gene structure: baseline log-expression, each type's program, each batch's
    effect, each gene's log inverse dispersion."""
    baseline = rng.standard_normal(genes) * 1.5 - 0.5 * rng.exponential(1.0, genes)
    programs = np.zeros((types, genes))
    for t in range(types):
        markers = rng.choice(genes, size=max(1, genes // 10), replace=False)
        programs[t, markers] = rng.gamma(2.0, 0.8, size=markers.size)
    effects = rng.standard_normal((batches, genes)) * 0.3
    log_theta = rng.uniform(np.log(0.5), np.log(20.0), genes)
    return baseline, programs, effects, log_theta


def make_counts(n: int, genes: int = COUNTS_DEFAULTS["genes"], *, types: int = COUNTS_DEFAULTS["types"],
                batches: int = COUNTS_DEFAULTS["batches"], library: float = COUNTS_DEFAULTS["library"],
                dropout: float = COUNTS_DEFAULTS["dropout"], seed: int = 0):
    """``n`` cells of ``genes`` genes: ``(counts int32 (n, genes), batch int64 (n,), cell_type
    int64 (n,))``, a pure function of the arguments."""
    n, genes = check_int("n", n, 1), check_int("genes", genes, 1)
    types, batches = check_int("types", types, 1), check_int("batches", batches, 1)
    if not library > 0 or not 0 <= dropout < 1:
        raise ValueError(f"library must be > 0 and dropout in [0, 1), got {library} and {dropout}")
    rng = np.random.default_rng(seed)
    baseline, programs, effects, log_theta = _programs(rng, genes, types, batches)
    cell_type = rng.integers(0, types, n)
    batch = rng.integers(0, batches, n)
    logits = baseline + programs[cell_type] + effects[batch] + rng.standard_normal((n, genes)) * 0.2
    logits -= logits.max(1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(1, keepdims=True)
    lib = np.exp(np.log(library) + rng.standard_normal(n) * 0.6)
    mean = lib[:, None] * p
    theta = np.exp(log_theta)
    rate = rng.gamma(theta, mean / theta)  # NB as a gamma-Poisson mixture
    counts = rng.poisson(rate)
    counts[rng.random((n, genes)) < dropout] = 0
    return counts.astype(np.int32), batch.astype(np.int64), cell_type.astype(np.int64)


def synthetic_counts_splits(num_train=None, num_valid=None, num_test=None, genes=None, seed=0):
    """``{split: (counts, batch, cell_type)}`` for train, valid and test, cut from one matrix
    (sizes default to ``COUNTS_SPLITS``, genes to ``COUNTS_DEFAULTS``)."""
    sizes = {s: v if v is not None else COUNTS_SPLITS[s]
             for s, v in (("train", num_train), ("valid", num_valid), ("test", num_test))}
    counts, batch, kind = make_counts(sum(sizes.values()), genes or COUNTS_DEFAULTS["genes"], seed=seed)
    out, start = {}, 0
    for split, size in sizes.items():
        out[split] = (counts[start:start + size], batch[start:start + size], kind[start:start + size])
        start += size
    return out


def count_dtype(top: int):
    """The smallest NumPy integer dtype the count likelihoods read that holds counts up to ``top``."""
    for dt in (np.uint8, np.int16, np.int32):
        if top <= np.iinfo(dt).max:
            return dt
    return np.int64


def fit_counts(a: np.ndarray, where: str) -> np.ndarray:
    """The array ``a`` (N, G) as counts: bool, integer, or float holding whole numbers, all
    non-negative; returned in ``count_dtype`` of its largest count. A ValueError naming what does
    not fit (other shapes, negative values, fractions such as normalised or log expression)."""
    if a.ndim != 2:
        raise ValueError(f"{where}: a count matrix is (cells, genes), got shape {a.shape}")
    if a.dtype == np.bool_:
        return a.astype(np.uint8)
    if a.dtype.kind not in "iuf":
        raise ValueError(f"{where}: dtype {a.dtype}; counts are integer (or float holding whole numbers)")
    lo, hi = (a.min(), a.max()) if a.size else (0, 0)
    if a.dtype.kind == "f":
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"{where}: holds NaN or infinite values")
        if not (a == np.floor(a)).all():
            raise ValueError(f"{where}: float values that are not whole numbers (normalised or log-transformed "
                             f"expression?): the count likelihoods model the raw counts")
    if lo < 0:
        raise ValueError(f"{where}: holds negative values (down to {lo}); counts are non-negative")
    return a.astype(count_dtype(int(hi)), copy=False)


def load_counts(seed: int = 0, genes=None, num_train=None, num_valid=None, num_test=None):
    """The ``"synthetic-counts"`` data set (``synthetic_counts_splits``) as a ``Dataset`` of CPU
    count tensors (N, genes), each in the ``count_dtype`` of the largest count of all splits."""
    from .datasets import Dataset  # datasets imports this module for load_dataset

    splits = synthetic_counts_splits(num_train, num_valid, num_test, genes, seed)
    dt = count_dtype(max(int(c.max()) for c, _, _ in splits.values()))
    t = {s: torch.from_numpy(c.astype(dt)) for s, (c, _, _) in splits.items()}
    return Dataset("synthetic-counts", t["train"], t["valid"], t["test"], dynamic=False, binary=False)
