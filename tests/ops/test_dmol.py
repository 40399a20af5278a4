"""What is particular to the discretized logistic mixture (the contract every likelihood passes is
in test_likelihood_contract.py): against float64 truth at the extremes (log-scales at and below
-7, |mean| = 30, very sharp and very flat components, both edge bins, 8 and 5 bits, C = 1 and 3,
half precision, channels-last and permuted conv outputs, upstream gradients other than 1), equal
to PixelCNN++'s own formulation wherever every bin probability is above 1e-5, the kernel tiled as
on a GPU, a backward with nothing left to do, the sampler, torch.compile, and bad input."""

import pytest
import torch

import fastvae
from fastvae import _mixture, reference
from fastvae import kernels as K
from fastvae.kernels import dmol as dmol_kernels
from fastvae.reference._dmol import sample_from_uniforms

from helpers import assert_close64, TOL

FN = fastvae.discretized_logistic_mixture_log_likelihood


def _entries(C, M):
    return 10 * M if C == 3 else 3 * M


def _params(B, C, M, H=3, W=5, layout="nchw", dtype=torch.float32, device="cpu"):
    """Parameters (B, K, H, W) with dim 1 ("nchw", "channels_last": NVAE's layout) or (B, H, W, K)
    with dim -1 ("permuted": VDVAE's ``conv(x).permute(0, 2, 3, 1)``), and the dim."""
    K_ = _entries(C, M)
    if layout == "permuted":
        return torch.randn(B, K_, H, W, device=device).to(dtype).permute(0, 2, 3, 1), -1
    p = torch.randn(B, K_, H, W, device=device).to(dtype)
    return (p.to(memory_format=torch.channels_last) if layout == "channels_last" else p), 1


def _levels(shape, bits, device="cpu"):
    # random levels with both edge bins present
    top = 2**bits - 1
    k = torch.randint(0, top + 1, shape, device=device)
    k.view(-1)[0], k.view(-1)[-1] = 0, top
    return k.to(torch.uint8)


def _x(p, dim, C, bits, kind):
    shape = list(p.shape)
    shape[dim] = C
    k = _levels(tuple(shape), bits, p.device)
    return k if kind == "uint8" else (k.double() * (2.0 / (2**bits - 1)) - 1.0).float()


def _truth(p, x, M, bits, dim, g):
    p64 = p.detach().double().requires_grad_(True)
    ll = reference.discretized_logistic_mixture_log_likelihood(p64, x, M, bits=bits, dim=dim)
    ll.backward(g.double())
    return ll.detach(), p64.grad


def _check(p, x, M, bits, dim, g, what=""):
    """The fused value and gradient against float64 truth: finite, within the dtype's tolerance
    (the gradient's atol scaled by its largest value, as in the contract: it is steep in the means)."""
    p = p.detach().requires_grad_(True)
    ll = FN(p, x, M, bits=bits, dim=dim)
    ll.backward(g)
    ll64, g64 = _truth(p, x, M, bits, dim, g)
    assert torch.isfinite(ll).all() and torch.isfinite(p.grad).all(), what
    n = x[0].numel()
    assert_close64(ll, ll64, dtype=ll.dtype, scale=max(1.0, n / 16), msg=f"{what} ll")
    assert p.grad.dtype == p.dtype and p.grad.stride() == p.stride()
    assert_close64(p.grad, g64, scale=max(1.0, g64.abs().max().item()), msg=f"{what} grad")
    return ll, p.grad


@pytest.mark.parametrize("kind", ["uint8", "float"])
@pytest.mark.parametrize("bits", [8, 5])
@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16], ids=str)
def test_random_parameters_against_float64_truth(dtype, C, bits, kind, device):
    M = 4
    p, dim = _params(3, C, M, dtype=dtype, device=device)
    _check(p, _x(p, dim, C, bits, kind), M, bits, dim, torch.randn(3, device=device), f"{dtype} C={C} bits={bits}")


def _extreme(C, M, device, case):
    """(B, K, 2, 3) parameters of one extreme kind, at 1 and 3 channels."""
    p = torch.randn(4, _entries(C, M), 2, 3, device=device)
    logits, means, raw, coefficients = _mixture.parts(p, M, 1)
    with torch.no_grad():
        if case == "log-scales at and below -7":
            raw.copy_(torch.tensor([-7.0, -7.5, -20.0, -7.0])[:M].expand_as(raw))
            means.mul_(0.05)
        elif case == "|mean| = 30":
            means.copy_(torch.tensor([30.0, -30.0, 29.0, -31.0])[:M].expand_as(means))
            raw.fill_(-7.0)
        elif case == "very sharp":
            raw.fill_(-6.9)
            means.mul_(0.01)  # the means inside or next to x's bin
        elif case == "very flat":
            raw.copy_(torch.tensor([8.0, 20.0, 40.0, 90.0])[:M].expand_as(raw))
        else:  # logits far apart: one component carries the pixel
            logits.mul_(40.0)
    return p


EXTREMES = ["log-scales at and below -7", "|mean| = 30", "very sharp", "very flat", "logits far apart"]


@pytest.mark.parametrize("case", EXTREMES)
@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_extremes_are_finite_and_exact(case, C, dtype, device):
    M = 4
    p = _extreme(C, M, device, case).to(dtype)
    for bits in (8, 5):
        x = _x(p, 1, C, bits, "uint8")
        _, grad = _check(p, x, M, bits, 1, torch.tensor([1.0, -2.0, 0.5, 3.0], device=device), f"{case} bits={bits}")
        if case == "log-scales at and below -7":  # no gradient below the clamp, the gradient at it
            _, _, raw_grad, _ = _mixture.parts(grad, M, 1)
            assert (raw_grad[..., 1:3] == 0).all() and (raw_grad[..., 0] != 0).any()


def test_the_flat_components_exact_log_probability(device):
    # a component so flat that e^-s underflows float32: log P = log(2h) - s - log 4 + O(h e^-s), exactly
    p = torch.zeros(1, 3, 1, 1, device=device)
    p[0, 2] = 120.0  # M = 1, C = 1: logit, mean 0, log-scale 120
    ll = FN(p, torch.zeros(1, 1, 1, 1, device=device), 1)
    want = torch.log(torch.tensor(2.0 / 255)) - 120.0 - torch.log(torch.tensor(4.0))
    torch.testing.assert_close(ll, want.reshape(1).to(device), rtol=1e-6, atol=0)


def _all_bins_above(p, x, M, bits, dim, floor=1e-5):
    # the smallest bin probability of any component and sub-pixel (float64)
    from fastvae.reference._dmol import _components

    _, mu, ls, xv = _components(p, x, M, bits, dim, torch.float64)
    h = 1.0 / (2**bits - 1)
    inv = torch.exp(-ls)
    prob = torch.sigmoid(inv * (xv - mu + h)) - torch.sigmoid(inv * (xv - mu - h))
    prob = torch.where(xv < -0.999, torch.sigmoid(inv * (xv - mu + h)), prob)
    prob = torch.where(xv > 0.999, 1 - torch.sigmoid(inv * (xv - mu - h)), prob)
    return prob.min() > floor


@pytest.mark.parametrize("C,bits,layout", [(3, 8, "permuted"), (1, 8, "nchw"), (3, 5, "nchw"), (1, 5, "permuted")])
def test_equal_to_pixelcnn_where_every_bin_probability_is_above_1e_5(C, bits, layout, device):
    M = 5
    p, dim = _params(4, C, M, layout=layout, dtype=torch.float64, device=device)
    with torch.no_grad():  # wide components, means inside [-1, 1]: every bin above 1e-5
        _, means, raw, coefficients = _mixture.parts(p, M, dim)
        raw.mul_(0.2)
        means.mul_(0.5)
        if coefficients is not None:
            coefficients.mul_(0.5)
    x = _x(p, dim, C, bits, "float").double()
    assert _all_bins_above(p, x, M, bits, dim)
    g = torch.randn(4, device=device, dtype=torch.float64)
    leaves = [p.detach().clone().requires_grad_(True) for _ in range(2)]
    fused = FN(leaves[0], x, M, bits=bits, dim=dim)
    pixelcnn = reference.pixelcnn_log_likelihood(leaves[1], x, M, bits=bits, dim=dim)
    fused.backward(g)
    pixelcnn.backward(g)
    assert_close64(fused, pixelcnn, msg="value")
    assert_close64(leaves[0].grad, leaves[1].grad, msg="gradient")


def test_below_1e_5_pixelcnn_approximates_and_fastvae_stays_exact(device):
    # |mean| = 30 at log-scale -7: PixelCNN++ takes the density at the bin's centre times its width
    p = _extreme(3, 2, device, "|mean| = 30").double()
    x = _x(p, 1, 3, 8, "uint8")
    assert not _all_bins_above(p, x, 2, 8, 1)
    exact = reference.discretized_logistic_mixture_log_likelihood(p, x, 2)
    fused = FN(p.float(), x, 2).double()
    assert_close64(fused, exact, dtype=torch.float32, msg="fused vs exact")
    assert ((reference.pixelcnn_log_likelihood(p, x, 2) - exact).abs() > 1.0).all()


@pytest.mark.parametrize("tile", [(4, 1), (2, 4), (8, 2)])
def test_the_kernel_tiled_as_on_a_gpu(tile, device):
    # several chunks per program and several programs per row: partial sums added by the launcher
    p, dim = _params(3, 3, 3, H=5, W=7, layout="permuted", device=device)
    x = _x(p, dim, 3, 8, "uint8")
    g = torch.randn(3, device=device)
    ll, grad = K.dmol_pass(p, x, 3, 8, dim, 1.0, g, store=True, tile=tile)
    ll64, g64 = _truth(p, x, 3, 8, dim, g)
    assert_close64(ll, ll64, dtype=torch.float32, scale=4, msg="ll")
    assert_close64(grad, g64, scale=max(1.0, g64.abs().max().item()), msg="grad")


def test_a_permuted_conv_output_is_read_in_place_and_backward_has_nothing_left(device, monkeypatch):
    conv = torch.randn(2, 20, 4, 6, device=device, requires_grad=True)  # (B, 10 M, H, W), M = 2
    p = conv.permute(0, 2, 3, 1)  # VDVAE's channels-last view
    x = _levels((2, 4, 6, 3), 8, device)
    seen, real = [], dmol_kernels._launch.launch
    catch = lambda k, n, a, b: (seen.append((k, a[0])), real(k, n, a, b))[1]
    monkeypatch.setattr(dmol_kernels._launch, "launch", catch)
    kept = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: (kept.append(t), t)[1], lambda t: t):
        ll = FN(p, x, 2, dim=-1)
    assert seen[0][1] is p, "the permuted view itself reaches the kernel"
    assert [t.numel() for t in kept if t is not None] == [p.numel()], "backward keeps the gradient alone"
    seen.clear()
    ll.sum().backward()
    assert all(k is not dmol_kernels._dmol_kernel for k, _ in seen), "no second pass for the expected gradient"
    assert conv.grad.is_contiguous()  # the gradient laid out as the conv wrote its output
    g64 = _truth(p, x, 2, 8, -1, torch.ones(2, device=device))[1]
    assert_close64(conv.grad.permute(0, 2, 3, 1), g64, scale=max(1.0, g64.abs().max().item()), msg="grad")


@pytest.mark.parametrize("upstream", ["3 * sum", "per row, strided", "mean inside the ELBO"])
def test_upstream_gradients_other_than_one(upstream, device):
    p, dim = _params(4, 3, 2, device=device)
    x = _x(p, dim, 3, 8, "uint8")
    leaf = p.detach().requires_grad_(True)
    if upstream == "3 * sum":
        (3 * FN(leaf, x, 2)).sum().backward()
        g = torch.full((4,), 3.0, device=device)
    elif upstream == "per row, strided":
        g = torch.randn(8, device=device)[::2]
        FN(leaf, x, 2).backward(g)
    else:
        kl = torch.rand(4, device=device)
        (fastvae.ELBOLoss(likelihood="discretized_logistic_mixture")(leaf, x, kl=kl, num_mixtures=2) * 5).backward()
        g = torch.full((4,), -5.0 / 4, device=device)
    g64 = _truth(leaf, x, 2, 8, dim, g)[1]
    assert_close64(leaf.grad, g64, scale=max(1.0, g64.abs().max().item()), msg=upstream)


def test_sampler_is_pixelcnns_given_the_same_uniforms(device):
    for C, layout in ((3, "permuted"), (1, "nchw"), (3, "channels_last")):
        M = 3
        p, dim = _params(2, C, M, layout=layout, device=device)
        B, P = 2, 15
        u = torch.rand(B, P, M + C, device=device)
        got = K.dmol_sample(p, M, dim, uniforms=u)
        # the kernel walks pixels in params' memory order: H then W here in every layout
        shape = p.movedim(dim, -1).shape[:-1]
        want = sample_from_uniforms(p, M, dim, u[..., :M].reshape(*shape, M), u[..., M:].reshape(*shape, C))
        assert got.shape == want.shape and got.dtype == torch.float32
        torch.testing.assert_close(got, want.float(), **TOL[torch.float32].kw)


def test_sampler_draws_the_mixture(device):
    # two components, probabilities 0.2 and 0.8, far apart and sharp: the frequencies and the values
    M = 2
    p = torch.zeros(64, 3 * M, 16, 16, device=device)
    p[:, 0], p[:, 1] = 0.0, torch.log(torch.tensor(4.0))
    p[:, 2], p[:, 3] = -0.5, 0.5  # means
    p[:, 4:6] = -5.0  # log-scales
    x = fastvae.sample_discretized_logistic_mixture(p, M)
    assert x.shape == (64, 1, 16, 16) and x.min() >= -1 and x.max() <= 1
    high = (x > 0).double().mean().item()
    assert abs(high - 0.8) < 4 * (0.8 * 0.2 / x.numel()) ** 0.5
    assert (x - torch.where(x > 0, 0.5, -0.5)).abs().median() < 0.02  # logistic draws around the means
    torch.manual_seed(7)
    a = fastvae.sample_discretized_logistic_mixture(p, M)
    torch.manual_seed(7)
    assert torch.equal(a, fastvae.sample_discretized_logistic_mixture(p, M))
    gen = torch.Generator(device=device).manual_seed(3)
    assert not torch.equal(a, fastvae.sample_discretized_logistic_mixture(p, M, generator=gen))


def test_sampler_applies_the_coefficients_in_order(device):
    # one sharp component: x_red ~ its mean, green ~ mean + tanh(a0) x_red, blue likewise
    p = torch.zeros(1, 10, 4, 4, device=device)
    p[0, 1], p[0, 4], p[0, 7] = 0.5, -0.2, 0.1  # means of R, G, B
    p[0, 2], p[0, 5], p[0, 8] = -7.0, -7.0, -7.0  # log-scales
    p[0, 3], p[0, 6], p[0, 9] = 0.4, -0.3, 0.6  # coefficient slots of R, G, B: a0, a1, a2
    x = fastvae.sample_discretized_logistic_mixture(p, 1)
    a0, a1, a2 = (torch.tanh(torch.tensor(v)) for v in (0.4, -0.3, 0.6))
    r = torch.tensor(0.5)
    g = -0.2 + a0 * r
    b = 0.1 + a1 * r + a2 * g
    want = torch.stack([r, g, b]).to(device)[:, None, None].expand(3, 4, 4)
    torch.testing.assert_close(x[0], want, rtol=0, atol=0.02)


def test_torch_compile_fullgraph_matches_eager(device):
    p, dim = _params(2, 3, 2, layout="permuted", device=device)
    x = _x(p, dim, 3, 8, "uint8")
    kl = torch.rand(2, device=device)

    def loss(p):
        return fastvae.elbo_loss(p, x, kl=kl, likelihood="discretized_logistic_mixture", num_mixtures=2, dim=-1)

    leaves = [p.detach().clone().requires_grad_(True) for _ in range(2)]
    compiled = torch.compile(loss, fullgraph=True)(leaves[0])
    eager = loss(leaves[1])
    compiled.backward()
    eager.backward()
    torch.testing.assert_close(compiled, eager, **TOL[torch.float32].kw)
    torch.testing.assert_close(leaves[0].grad, leaves[1].grad, rtol=1e-4, atol=1e-5)
    draw = torch.compile(lambda p: fastvae.sample_discretized_logistic_mixture(p, 2, dim=-1), fullgraph=True)
    torch.manual_seed(1)
    a = draw(p)
    torch.manual_seed(1)
    assert torch.equal(a, draw(p)) and a.shape == (2, 3, 5, 3)


def test_bad_input_is_refused(device):
    p = torch.zeros(2, 20, 3, 3, device=device)
    x = torch.zeros(2, 3, 3, 3, device=device)
    with pytest.raises(ValueError, match=r"params must have shape \(2, 30, 3, 3\)"):
        FN(p, x, 3)  # 20 entries for 3 mixtures
    with pytest.raises(ValueError, match="1 or 3 channels"):
        FN(p, torch.zeros(2, 2, 3, 3, device=device), 2)
    with pytest.raises(ValueError, match="bits must be in 1..8"):
        FN(p, x, 2, bits=9)
    with pytest.raises(TypeError, match="num_mixtures must be an int"):
        FN(p, x, 2.0)
    with pytest.raises(ValueError, match="not the batch dimension"):
        FN(p, x, 2, dim=0)
    with pytest.raises(ValueError, match="dim must be in"):
        FN(p, x, 2, dim=4)
    with pytest.raises(ValueError, match=r"levels 0..31 \(bits=5\)"):
        FN(p, torch.full((2, 3, 3, 3), 32, dtype=torch.uint8, device=device), 2, bits=5, validate_args=True)
    with pytest.raises(ValueError, match="10 \\* num_mixtures"):
        fastvae.sample_discretized_logistic_mixture(p, 3)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        fastvae.sample_discretized_logistic_mixture(p, 2, generator=1)
    with pytest.raises(TypeError, match="needs num_mixtures"):
        fastvae.ELBOLoss(likelihood="dmol")(p, x, kl=torch.zeros(2, device=device))
