"""The contract every likelihood of the registry passes (``fastvae.likelihoods``): value and every
gradient against float64 truth, in every dtype, on odd shapes, strided and channels-last inputs,
with upstream gradients other than 1; inputs never overwritten; a kept graph backward twice; the
empty batch; bad input refused; ``validate_args``; the ELBO and the K-sample bound built on it.
A new record gets all of this by being in the registry (its inputs: tests/likelihood_cases.py).
What is particular to one likelihood (extreme logits, logscale forms, ...) stays in its own file."""

import math

import likelihood_cases as cases
import pytest
import torch

import fastvae
from fastvae import likelihoods
from fastvae.kernels import _launch

from helpers import assert_close64, randn, sum_dtype, TOL

RECORDS = likelihoods.records()
NAMES = [r.name for r in RECORDS]
DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64]
SHAPES = [(1, 1), (1, 9), (6, 1), (37, 100), (5, 781), (3, 2500), (4, 1, 7, 9)]


def _check(spec, p, x, args, ll, g, what=""):
    """ll and the gradients its backward(g) left on p, x and the args, against float64 truth."""
    ll64, gp64, gx64, ga64 = cases.truth(spec, p, x, args, g)
    n = math.prod(p.shape[1:])
    assert_close64(ll, ll64, dtype=sum_dtype(p.dtype), scale=max(1.0, n / 64), msg=f"{what} ll")
    assert p.grad.dtype == p.dtype and p.grad.shape == p.shape
    assert_close64(p.grad, gp64, msg=f"{what} grad {spec.param}")
    if x.is_floating_point() and x.requires_grad:
        if spec.counts:  # counts are discrete: no gradient
            assert x.grad is None
        else:
            assert_close64(x.grad, gx64, msg=f"{what} grad x")
    for a, want in zip(cases.tensors(args), ga64):
        if a.requires_grad:
            assert a.grad.shape == a.shape and a.grad.dtype == a.dtype
            assert_close64(a.grad, want, scale=max(1.0, p.numel() / a.numel() / 8), msg=f"{what} grad of an argument")


# float, uint8 and bool targets; for the count records also "integer": int16, int32, int64 in turn
TARGETS = [(r.name, t) for r in RECORDS for t in ("float", "uint8", "bool") + (("integer",) if r.counts else ())]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name,target", TARGETS, ids=[f"{n}-{t}" for n, t in TARGETS])
def test_value_and_gradients_match_float64_truth(name, target, shape, dtype, device):
    spec = likelihoods.get(name)
    if target == "integer":
        target = cases.COUNT_DTYPES[SHAPES.index(shape) % 3]
    p = cases.params(spec, shape, dtype, device).requires_grad_(True)
    x = cases.targets(spec, shape, target, device, dtype)
    args = cases.extra(spec, shape, dtype, device)
    ll = cases.call(spec, p, x, args)
    assert ll.dtype == sum_dtype(dtype) and ll.shape == (shape[0],)
    assert "fastvae" in type(ll.grad_fn).__name__
    g = torch.randn(shape[0], device=device, dtype=ll.dtype)  # not the last layer: any upstream gradient
    ll.backward(g)
    _check(spec, p, x, args, ll, g)


LAYOUTS = ["transposed slices", "channels-last", "targets expanded from one row", "permuted targets"]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", NAMES)
def test_strided_inputs_are_read_through_their_strides(name, layout, device, monkeypatch):
    spec = likelihoods.get(name)
    shape = (5, 3, 6, 7)
    if layout == "transposed slices":
        p = cases.params(spec, shape, torch.float32, device, noncontig=True)
        x = cases.targets(spec, shape, "float", device).permute(3, 2, 1, 0).contiguous().permute(3, 2, 1, 0)
    elif layout == "channels-last":
        p = cases.params(spec, shape, torch.float32, device).to(memory_format=torch.channels_last)
        x = cases.targets(spec, shape, "uint8", device).to(memory_format=torch.channels_last)
    elif layout == "targets expanded from one row":
        p = cases.params(spec, shape, torch.float32, device)
        x = cases.targets(spec, (1, *shape[1:]), "float", device).expand(shape)  # stride 0 over the rows
    else:
        p = cases.params(spec, shape, torch.float32, device)
        x = cases.targets(spec, (5, 7, 6, 3), "uint8", device).permute(0, 3, 2, 1)
    p = p.detach().requires_grad_(True)
    args = cases.extra(spec, shape, torch.float32, device, form="feature")
    seen = []
    real = _launch.launch
    monkeypatch.setattr(_launch, "launch", lambda k, n, a, b: (seen.append(a[0]), real(k, n, a, b))[1])
    ll = cases.call(spec, p, x, args)
    assert seen[0] is p, "the parameters must reach the kernel as they are, not a copy"
    g = torch.randn(shape[0], device=device)
    ll.backward(g)
    _check(spec, p, x, args, ll, g, layout)
    if layout == "channels-last":
        assert p.grad.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("upstream", ["sum() * 3 (stride 0)", "zero", "strided bfloat16"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_upstream_gradients_other_than_one(name, dtype, upstream, device):
    spec = likelihoods.get(name)
    shape = (11, 300)
    p = cases.params(spec, shape, dtype, device, noncontig=True).requires_grad_(True)
    x = cases.targets(spec, shape, "float", device, dtype).requires_grad_(dtype != torch.float16)
    args = cases.extra(spec, shape, dtype, device, form="feature")
    ll = cases.call(spec, p, x, args)
    if upstream.startswith("sum"):
        (ll.sum() * 3).backward()
        g = torch.full((11,), 3.0, device=device)
    elif upstream == "zero":
        g = torch.zeros(11, device=device)
        ll.backward(g)
    else:  # every other element of a bfloat16 buffer: a non-unit stride and a half-precision dtype
        g = torch.randn(22, device=device).to(torch.bfloat16)[::2]
        ll.backward(g)
        g = g.float()
    _check(spec, p, x, args, ll, g, upstream)


@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize("name", NAMES)
def test_inputs_are_never_overwritten_and_a_kept_graph_backs_twice(name, backend, device):
    # one behaviour on every backend: a second backward through a kept graph gives the gradient
    # again, and create_graph (second-order gradients) is refused rather than silently missing terms
    fastvae.set_backend(backend)
    spec = likelihoods.get(name)
    p = cases.params(spec, (9, 64), torch.float32, device).requires_grad_(True)
    x = cases.targets(spec, (9, 64), "float", device).requires_grad_(not spec.counts)
    args = cases.extra(spec, (9, 64), torch.float32, device, form="feature")
    grads = [t for t in (p, x, *cases.tensors(args)) if t.requires_grad]
    saved = [t.detach().clone() for t in (p, x, *cases.tensors(args))]
    ll = cases.call(spec, p, x, args)
    g = torch.randn(9, device=device)
    ll.backward(g, retain_graph=True)
    first = [t.grad.clone() for t in grads]
    assert all(torch.equal(t.detach(), s) for t, s in zip((p, x, *cases.tensors(args)), saved))
    assert p.grad.data_ptr() != p.data_ptr()
    for t in grads:
        t.grad = None
    ll.backward(2 * g)  # the stored gradients were left as the forward wrote them
    for t, f in zip(grads, first):
        torch.testing.assert_close(t.grad, 2 * f, **TOL[torch.float32].kw)
    assert torch.equal(cases.call(spec, p, x, args), ll)  # the same inputs again: the same answer
    with pytest.raises(RuntimeError, match="not twice differentiable"):
        torch.autograd.grad(cases.call(spec, p, x, args).sum(), p, create_graph=True)


@pytest.mark.parametrize("name", NAMES)
def test_targets_alone_get_their_gradient(name, device):
    spec = likelihoods.get(name)
    p = cases.params(spec, (6, 33), torch.float32, device)
    x = cases.targets(spec, (6, 33), "float", device).requires_grad_(True)
    args = {n: v.detach() if isinstance(v, torch.Tensor) else v
            for n, v in cases.extra(spec, (6, 33), torch.float32, device, form="number").items()}
    ll = cases.call(spec, p, x, args)
    if spec.counts:  # counts are discrete: no gradient
        if ll.requires_grad:
            ll.sum().backward()
        assert x.grad is None
        return
    g = torch.randn(6, device=device)
    ll.backward(g)
    assert_close64(x.grad, cases.truth(spec, p, x, args, g)[2], msg="grad x")


@pytest.mark.parametrize("name", NAMES)
def test_no_graph_without_grad_and_the_empty_batch(name, device):
    spec = likelihoods.get(name)
    p = cases.params(spec, (5, 12), torch.float32, device).requires_grad_(True)
    x = cases.targets(spec, (5, 12), "uint8", device)
    args = cases.extra(spec, (5, 12), torch.float32, device)
    with torch.no_grad():
        ll = cases.call(spec, p, x, args)
    assert ll.grad_fn is None
    assert_close64(ll, cases.truth(spec, p, x, args, torch.ones(5, device=device))[0], msg="ll")
    empty = torch.zeros(0, 5, device=device, requires_grad=True)
    ll = cases.call(spec, empty, cases.targets(spec, (0, 5), "float", device),
                    cases.extra(spec, (0, 5), torch.float32, device))
    assert ll.shape == (0,)
    ll.sum().backward()
    assert empty.grad.shape == (0, 5)
    no_cols = torch.zeros(3, 0, device=device)
    no_args = cases.extra(spec, (3, 0), torch.float32, device)
    assert torch.equal(cases.call(spec, no_cols, no_cols, no_args), torch.zeros(3, device=device))


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "reference"])
@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_refused_and_validation_names_the_value(name, fused, device):
    spec = likelihoods.get(name)
    p = torch.zeros(4, 6, device=device)
    args = cases.extra(spec, (4, 6), torch.float32, device)
    call = lambda p, x, **kw: cases.call(spec, p, x, args, fused=fused, **kw)
    with pytest.raises(ValueError, match=r"\(4, 6\) and \(4, 1\)"):
        call(p, torch.zeros(4, 1, device=device))  # broadcastable, still refused
    with pytest.raises(ValueError, match="same shape"):
        call(p, torch.zeros(24, device=device))  # the same numel, still refused
    with pytest.raises(TypeError, match=f"{spec.param} must be a floating tensor.*int64"):
        call(torch.zeros(4, 6, dtype=torch.long, device=device), p)
    with pytest.raises(TypeError, match="x must be .*int8"):
        call(p, torch.zeros(4, 6, dtype=torch.int8, device=device))
    with pytest.raises(TypeError, match="torch.Tensor"):
        call(p, 1.0)
    if device.type == "cpu":
        with pytest.raises(ValueError, match="same device"):
            call(p, torch.zeros(4, 6, device="meta"))
    x, what = cases.outside_support(spec, (4, 6), device)
    call(p, x)  # not checked by default: the formula's value
    with pytest.raises(ValueError, match=f"{what}.*x.flatten\\(\\)\\[1\\]"):
        call(p, x, validate_args=True)
    bytes_ = torch.full((4, 6), 255, dtype=torch.uint8, device=device)
    if spec.uint8 == likelihoods.BINARY and not spec.counts:  # 0/1 bytes: 255 is out of the support
        with pytest.raises(ValueError, match="0 or 1"):
            call(p, bytes_, validate_args=True)
    else:  # k/255: every byte is valid
        call(p, bytes_, validate_args=True)


def _loss_inputs(spec, shape, dtype, device, form, softmax):
    """Decoder outputs and the likelihood's arguments for a loss; with ``softmax`` (count
    records) logits and a log library instead of means."""
    args = cases.extra(spec, shape, dtype, device, form=form)
    if softmax:
        rows = shape[:-1]
        args["log_library"] = (torch.rand(rows[-1], device=device) * 3 + 3).log().to(dtype).requires_grad_(True)
        return randn(shape, dtype, device, scale=2.0).requires_grad_(True), args
    return cases.params(spec, shape, dtype, device).requires_grad_(True), args


FORMS = [(n, False) for n in NAMES] + [(r.name, True) for r in RECORDS if r.counts]
FORM_IDS = [n + (" (softmax)" if sm else "") for n, sm in FORMS]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name,softmax", FORMS, ids=FORM_IDS)
def test_the_elbo_on_this_likelihood(name, softmax, dtype, reduction, device):
    spec = likelihoods.get(name)
    B, D, L = 7, 40, 4
    p, args = _loss_inputs(spec, (B, D), dtype, device, "shared", softmax)
    x = cases.targets(spec, (B, D), "uint8", device)
    mu, logvar = (randn((B, L), dtype, device).requires_grad_(True) for _ in range(2))
    loss_fn = fastvae.ELBOLoss(beta=0.7, reduction=reduction, likelihood=spec.cli_name)  # any spelling
    assert repr(spec.name) in repr(loss_fn)
    loss = loss_fn(p, x, mu, logvar, **args)
    up = torch.randn(loss.shape, device=device)
    loss.backward(up)
    leaves = [p, mu, logvar, *cases.tensors(args)]
    t64 = [t.detach().double().requires_grad_(True) for t in leaves]
    args64 = dict(zip([n for n, v in args.items() if isinstance(v, torch.Tensor)], t64[3:]))
    args64.update({n: v for n, v in args.items() if not isinstance(v, torch.Tensor)})
    ref = fastvae.reference.elbo_loss(t64[0], x, t64[1], t64[2], beta=0.7, reduction=reduction, likelihood=name,
                                      **args64)
    assert_close64(loss, ref, dtype=torch.float32, scale=10 * D, msg="loss")
    for t, want in zip(leaves, torch.autograd.grad(ref, t64, up.double())):
        assert_close64(t.grad, want, scale=10, msg="gradient")
    terms = fastvae.ELBOLoss(return_terms=True, likelihood=name)(p, x, mu, logvar, **args)
    assert_close64(terms.log_likelihood, cases.call(spec, t64[0], x, args64, fused=False), dtype=torch.float32,
                   scale=10 * D, msg="log_likelihood term")


def _iwae_by_hand(ll, lr, K):
    return -(torch.logsumexp(ll + lr, 0) - math.log(K))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name,softmax", FORMS, ids=FORM_IDS)
def test_the_k_sample_bound_on_this_likelihood(name, softmax, reduction, device):
    spec = likelihoods.get(name)
    K, B, D = 3, 5, 24
    recon, args = _loss_inputs(spec, (K, B, D), torch.float32, device, "feature", softmax)
    if "zero_inflation_logits" in args:  # per sample, like recon
        args["zero_inflation_logits"] = randn((K, B, D), torch.float32, device).requires_grad_(True)
    if "log_theta" in args or "logscale" in args:  # broadcast against one sample's shape
        name_s = "log_theta" if "log_theta" in args else "logscale"
        args[name_s] = randn((D,), torch.float32, device, scale=0.5).requires_grad_(True)
    x = cases.targets(spec, (B, D), "uint8", device)  # once for all K samples
    lr = torch.randn(K, B, device=device, requires_grad=True)
    loss = fastvae.iwae_loss(recon, x, lr, likelihood=name, reduction=reduction, **args)
    up = torch.randn(loss.shape, device=device)
    loss.backward(up)
    leaves = [recon, lr, *cases.tensors(args)]
    t64 = [t.detach().double().requires_grad_(True) for t in leaves]
    args64 = dict(zip([n for n, v in args.items() if isinstance(v, torch.Tensor)], t64[2:]))
    args64.update({n: v for n, v in args.items() if not isinstance(v, torch.Tensor)})
    ref = fastvae.reference.iwae_loss(t64[0], x, t64[1], likelihood=name, reduction=reduction, **args64)
    assert_close64(loss, ref, dtype=torch.float32, scale=10, msg="loss")
    for t, want in zip(leaves, torch.autograd.grad(ref, t64, up.double())):
        assert_close64(t.grad, want, scale=10, msg="gradient")
    # the definition, and K = 1: the single-sample Monte Carlo ELBO
    ll = torch.stack([cases.call(spec, t64[0][k].detach(), x, {n: (v[k] if isinstance(v, torch.Tensor) and v.shape ==
                                                                 recon.shape else v) for n, v in args64.items()},
                                 fused=False) for k in range(K)]).detach()
    rows = _iwae_by_hand(ll, lr.detach().double(), K)
    assert_close64(loss, {"mean": rows.mean(), "sum": rows.sum(), "none": rows}[reduction], dtype=torch.float32,
                   scale=20, msg="definition")
    one = fastvae.iwae_loss(recon[:1], x, lr[:1], likelihood=name, reduction="none",
                            **{n: (v[:1] if isinstance(v, torch.Tensor) and v.shape == recon.shape else v)
                               for n, v in args.items()})
    assert_close64(one, -(ll[0] + lr[0].detach().double()), dtype=torch.float32, scale=20, msg="K = 1")
