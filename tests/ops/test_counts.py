"""What is particular to the count likelihoods (the contract every likelihood passes is in
test_likelihood_contract.py): exact in float32 where the textbook formula is not, equal to
scvi-tools' own formulas where those are exact, and the softmax form of scVI's decoder on rows as
wide as a transcriptome, under every upstream gradient and under torch.compile."""

import itertools

import pytest
import torch

import fastvae
from benchmarks.harness import scvi  # scvi-tools' formulas, as it writes them (the benchmark's eager)
from fastvae import kernels as K
from fastvae import reference
from fastvae.kernels import modes

from helpers import assert_close64

# the ranges the issue names: theta 1e-4 .. 1e6, means 1e-8 .. 1e5, counts up to 1e5
THETAS = [1e-4, 1e-2, 0.5, 2.9, 3.1, 10.0, 1e3, 1e5, 1e6]
MEANS = [1e-8, 1e-3, 0.5, 3.0, 100.0, 1e4, 1e5]
COUNTS = [0, 1, 2, 5, 30, 1000, 100000]


def _grid(device):
    # one element per row (N, 1): each row's log-likelihood is one element's
    t, m, x = map(list, zip(*itertools.product(THETAS, MEANS, COUNTS)))
    lt = torch.tensor(t, dtype=torch.float64).log()
    return (torch.tensor(m, device=device)[:, None], torch.tensor(x, device=device)[:, None].to(torch.int32),
            lt.to(device).float()[:, None])


def _per_element(fn, mean, x, *args, **kw):
    # (value, d/d log mean, d/d of each argument) per element
    leaves = [t.detach().requires_grad_(True) for t in (mean, *args, *kw.values())]
    ll = fn(leaves[0], x, *leaves[1:1 + len(args)], **dict(zip(kw, leaves[1 + len(args):])))
    ll.sum().backward()
    return torch.stack([ll.double(), (leaves[0].grad * leaves[0]).double()[:, 0],
                        *[t.grad.double()[:, 0] for t in leaves[1:]]])


def test_exact_in_float32_where_the_textbook_formula_is_not(device):
    mean, x, lt = _grid(device)
    got = _per_element(fastvae.negative_binomial_log_likelihood, mean, x, lt)
    want = _per_element(reference.negative_binomial_log_likelihood, mean.double(), x, lt.double())
    # the value: float32's precision relative to the pieces, about 2e-6 of |log p| at the most
    err = (got[0] - want[0]).abs()
    assert (err <= 1e-5 * (1 + want[0].abs())).all(), (err / (1 + want[0].abs())).max()
    # d/d log mean and d/d log theta: to float32's precision of their terms
    for name, g, w in (("d/d log mean", got[1], want[1]), ("d/d log theta", got[2], want[2])):
        bad = (g - w).abs() > 1e-6 + 2e-5 * w.abs()
        assert not bad.any(), f"{name}: {g[bad].tolist()} vs {w[bad].tolist()}"
    # scvi-tools' float32 formula misses by a nat and more in the same ranges
    theta = lt.double().exp().float()
    textbook = scvi.log_nb_positive(x.float(), mean, theta).double()[0]
    assert ((textbook - want[0]).abs() > 0.5).any()


def test_poisson_and_zero_inflation_exact_in_float32(device):
    mean, x, lt = _grid(device)
    got = _per_element(fastvae.poisson_log_likelihood, mean, x)
    want = _per_element(reference.poisson_log_likelihood, mean.double(), x)
    assert ((got[0] - want[0]).abs() <= 1e-5 * (1 + want[0].abs())).all()
    assert ((got[1] - want[1]).abs() <= 1e-6 + 2e-5 * want[1].abs()).all()
    rho = torch.linspace(-4, 4, mean.shape[0], device=device)[:, None]
    got = _per_element(fastvae.negative_binomial_log_likelihood, mean, x, lt, zero_inflation_logits=rho)
    want = _per_element(reference.negative_binomial_log_likelihood, mean.double(), x, lt.double(),
                        zero_inflation_logits=rho.double())
    assert ((got[0] - want[0]).abs() <= 1e-5 * (1 + want[0].abs())).all()
    for g, w in zip(got[1:], want[1:]):
        assert ((g - w).abs() <= 1e-6 + 2e-5 * w.abs()).all(), ((g - w).abs() / (1e-6 + w.abs())).max()


@pytest.mark.parametrize("zero_inflated", [False, True])
def test_equals_scvi_tools_formulas_where_they_are_exact(zero_inflated, device):
    # float64, means well above scvi-tools' eps (1e-8): the two agree to the eps's size
    B, G = 6, 50
    mu = torch.rand(B, G, device=device, dtype=torch.float64) * 20 + 0.1
    x = torch.poisson(mu * torch.rand(B, G, device=device, dtype=torch.float64) * 2)
    lt = torch.randn(G, device=device, dtype=torch.float64)
    pi = torch.randn(B, G, device=device, dtype=torch.float64)
    ours = fastvae.negative_binomial_log_likelihood(mu, x, lt, zero_inflation_logits=pi if zero_inflated else None)
    theta = lt.exp().expand(B, G)
    theirs = scvi.log_zinb_positive(x, mu, theta, pi) if zero_inflated else scvi.log_nb_positive(x, mu, theta)
    theirs = theirs.sum(1)
    torch.testing.assert_close(ours, theirs, rtol=1e-7, atol=1e-6)


def _softmax_case(B, G, device, form="gene", zero_inflated=False, dtype=torch.float32):
    logits = (torch.randn(B, G, device=device) * 2).to(dtype).requires_grad_(True)
    lib = torch.log(torch.rand(B, device=device) * 2000 + 500).to(dtype).requires_grad_(True)
    with torch.no_grad():
        x = torch.poisson(torch.exp(lib[:, None].float() + torch.log_softmax(logits.float(), -1))).to(torch.int16)
    lt = {"gene": lambda: torch.randn(G, device=device), "element": lambda: torch.randn(B, G, device=device),
          "shared": lambda: torch.randn((), device=device), "poisson": lambda: None}[form]()
    lt = lt.to(dtype).requires_grad_(True) if lt is not None else None
    zi = torch.randn(B, G, device=device).to(dtype).requires_grad_(True) if zero_inflated else None
    return logits, x, lt, lib, zi


def _softmax_check(logits, x, lt, lib, zi, g, msg=""):
    leaves = [t for t in (logits, lt, lib, zi) if t is not None]
    t64 = [t.detach().double().requires_grad_(True) for t in leaves]
    it = iter(t64)
    l64, lt64, lib64 = next(it), (next(it) if lt is not None else None), next(it)
    zi64 = next(it) if zi is not None else None
    ref = reference.softmax_negative_binomial_log_likelihood(l64, x, lt64, lib64, zero_inflation_logits=zi64)
    for t, want in zip(leaves, torch.autograd.grad(ref, t64, g.double())):
        assert t.grad.shape == t.shape and t.grad.dtype == t.dtype
        assert_close64(t.grad, want, scale=50, msg=f"{msg} gradient")
    return ref


@pytest.mark.parametrize("zero_inflated", [False, True])
def test_softmax_form_on_a_whole_transcriptome(zero_inflated, device):
    # 33,000 genes: the rows are walked in chunks; no (B, G) temporary besides the gradients
    logits, x, lt, lib, zi = _softmax_case(2, 33000, device, "gene", zero_inflated)
    ll = fastvae.softmax_negative_binomial_log_likelihood(logits, x, lt, lib, zero_inflation_logits=zi)
    g = torch.randn(2, device=device)
    ll.backward(g)
    ref = _softmax_check(logits, x, lt, lib, zi, g, "33k genes")
    assert_close64(ll, ref, dtype=torch.float32, scale=2000, msg="ll")


@pytest.mark.parametrize("tile", [(4, 1, 16), (2, 2, 8), (1, 1, 64)])
@pytest.mark.parametrize("form", ["gene", "element", "shared", "poisson"])
def test_softmax_kernel_tiles_as_on_a_gpu(form, tile, device):
    # several programs, one row per tile, several chunks: each program adds its rows into its
    # partial sums of a per-gene log theta's gradient
    B, G = 7, 37
    logits, x, lt, lib, zi = _softmax_case(B, G, device, form, True)
    s = None if lt is None else (lt.expand(B, G) if lt.dim() else lt.reshape(1, 1).expand(B, G))
    mode = {"gene": modes.GS_PARTIALS, "element": modes.GS_ELEMENTS, "shared": modes.GS_ROW_SUMS,
            "poisson": modes.GS_NONE}[form]
    with torch.no_grad():
        ll, gl, glib, gs, gq = K.softmax_counts(logits, x, lib, s, 0.0, zi, nb=lt is not None, store_gl=True,
                                                store_glib=True, gs_mode=mode, store_gq=True, tile=tile)
    logits.grad, lib.grad, zi.grad = gl, glib, gq
    if lt is not None:
        lt.grad = {modes.GS_PARTIALS: lambda: K.sum_partials(gs, logits).reshape(G), modes.GS_ELEMENTS: lambda: gs,
                   modes.GS_ROW_SUMS: lambda: gs.sum()}[mode]()
    ref = _softmax_check(logits, x, lt, lib, zi, torch.ones(B, device=device), f"tile {tile}")
    assert_close64(ll, ref, dtype=torch.float32, scale=50, msg="ll")


@pytest.mark.parametrize("upstream", ["sum() * 3", "random", "kept graph, twice"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64], ids=str)
@pytest.mark.parametrize("form", ["gene", "element", "shared", "poisson"])
def test_softmax_form_under_every_upstream_gradient(form, dtype, upstream, device):
    logits, x, lt, lib, zi = _softmax_case(5, 40, device, form, form != "poisson", dtype)
    ll = fastvae.softmax_negative_binomial_log_likelihood(logits, x, lt, lib, zero_inflation_logits=zi)
    assert ll.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    if upstream == "sum() * 3":
        (ll.sum() * 3).backward()
        g = torch.full((5,), 3.0, device=device)
    elif upstream == "random":
        g = torch.randn(5, device=device)
        ll.backward(g)
    else:
        g = torch.randn(5, device=device)
        ll.backward(g, retain_graph=True)
        for t in (logits, lt, lib, zi):
            if t is not None:
                t.grad = None
        ll.backward(g)
    _softmax_check(logits, x, lt, lib, zi, g, upstream)


@pytest.mark.slow
def test_compile_fullgraph_matches_eager(device):
    logits, x, lt, lib, zi = _softmax_case(4, 30, device, "gene", True)
    mean = torch.rand(4, 30, device=device, requires_grad=True)

    def loss(logits, lt, lib, zi, mean):
        a = fastvae.softmax_negative_binomial_log_likelihood(logits, x, lt, lib, zero_inflation_logits=zi)
        b = fastvae.negative_binomial_log_likelihood(mean, x, lt, zero_inflation_logits=zi)
        return (a + 0.5 * b).mean()

    leaves = (logits, lt, lib, zi, mean)
    eager = torch.autograd.grad(loss(*leaves), leaves)
    compiled_loss = torch.compile(loss, fullgraph=True)
    value = compiled_loss(*leaves)
    torch.testing.assert_close(value, loss(*leaves), rtol=1e-5, atol=1e-4)
    for a, b in zip(torch.autograd.grad(value, leaves), eager):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_bad_count_inputs(device):
    mean = torch.rand(3, 5, device=device)
    x = torch.zeros(3, 5, dtype=torch.int32, device=device)
    with pytest.raises(TypeError, match="log_theta must be a torch.Tensor"):
        fastvae.negative_binomial_log_likelihood(mean, x, 0.5)
    with pytest.raises(ValueError, match="log_theta of shape \\(4,\\) does not broadcast"):
        fastvae.negative_binomial_log_likelihood(mean, x, torch.zeros(4, device=device))
    with pytest.raises(ValueError, match="zero_inflation_logits must have the same shape"):
        fastvae.negative_binomial_log_likelihood(mean, x, torch.zeros(5, device=device),
                                                 zero_inflation_logits=torch.zeros(3, 4, device=device))
    with pytest.raises(ValueError, match="log_library must be \\(B,\\) or \\(B, 1\\)"):
        fastvae.softmax_negative_binomial_log_likelihood(mean, x, None, torch.zeros(4, device=device))
    with pytest.raises(ValueError, match="logits must be \\(B, G\\)"):
        fastvae.softmax_negative_binomial_log_likelihood(mean[None], x[None], None, torch.zeros(1, device=device))
    neg = x.clone()
    neg[1, 2] = -3
    with pytest.raises(ValueError, match="counts \\(non-negative integers\\).*x.flatten\\(\\)\\[7\\] = -3"):
        fastvae.poisson_log_likelihood(mean, neg, validate_args=True)
    with pytest.raises(TypeError, match="needs log_theta="):
        fastvae.elbo_loss(mean, x, kl=torch.zeros(3, device=device), likelihood="negative_binomial")
    with pytest.raises(TypeError, match="takes log_library; got log_theta"):
        fastvae.elbo_loss(mean, x, kl=torch.zeros(3, device=device), likelihood="poisson",
                          log_theta=torch.zeros(5, device=device))
