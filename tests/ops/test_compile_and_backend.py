"""torch.compile(fullgraph=True) through the registered ops, and the backend switch."""

import os
import subprocess
import sys

import pytest
import torch
from torch import nn

import fastvae
from fastvae import _backend

from helpers import SAME_FLOAT32, SAME_FLOAT32_GRAD


class TinyVAE(nn.Module):
    def __init__(self, D=24, H=16, L=4):
        super().__init__()
        self.enc = nn.Linear(D, H)
        self.mu = nn.Linear(H, L)
        self.logvar = nn.Linear(H, L)
        self.dec = nn.Sequential(nn.Linear(L, H), nn.Tanh(), nn.Linear(H, D))
        self.loss = fastvae.ELBOLoss(beta=0.5)

    def forward(self, x):
        h = torch.tanh(self.enc(x.float()))
        mu, logvar = self.mu(h), self.logvar(h)
        z, kl = fastvae.reparameterize_kl(mu, logvar)
        logits = self.dec(z)
        ll = fastvae.bernoulli_log_likelihood(logits, x)
        return self.loss(logits, x, mu, logvar) + 0.1 * (kl.mean() - ll.mean())


@pytest.mark.slow
@pytest.mark.parametrize("likelihood", ["continuous_bernoulli", "gaussian"])
def test_compile_fullgraph_other_likelihoods(likelihood, device):
    # the custom ops (forward, and backward recomputing the gradients) under fullgraph compile
    torch.manual_seed(0)
    mean = torch.randn(6, 3, 4, 4, device=device, requires_grad=True)
    x = torch.randint(0, 256, (6, 3, 4, 4), dtype=torch.uint8, device=device)
    kl = torch.rand(6, device=device, requires_grad=True)
    ls = torch.zeros(1, 3, 1, 1, device=device, requires_grad=True)  # per channel, learned
    extra = dict(logscale=ls) if likelihood == "gaussian" else {}
    tensors = (mean, kl) + ((ls,) if extra else ())

    def loss(mean, kl):
        return fastvae.elbo_loss(mean, x, kl=kl, likelihood=likelihood, **extra) * 2.0

    eager = torch.autograd.grad(loss(mean, kl), tensors)
    torch._dynamo.reset()
    compiled = torch.compile(loss, fullgraph=True)
    value = compiled(mean, kl)
    torch.testing.assert_close(value, loss(mean, kl), **SAME_FLOAT32.kw)
    for a, b in zip(torch.autograd.grad(value, tensors), eager):
        torch.testing.assert_close(a, b, **SAME_FLOAT32_GRAD.kw)


@pytest.mark.parametrize("module", ["fastvae", "reference"])
def test_loss_module_built_inside_a_fullgraph_compile(module, device):
    # a loss module is often constructed inside the training step: that must not break the graph
    cls = fastvae.ELBOLoss if module == "fastvae" else fastvae.reference.ELBOLoss
    logits = torch.randn(5, 12, device=device, requires_grad=True)
    x = (torch.rand(5, 12, device=device) < 0.5).to(torch.uint8)
    kl = torch.rand(5, device=device, requires_grad=True)

    def loss(logits, kl):
        return cls(beta=0.5, reduction="sum")(logits, x, kl=kl) + cls()(logits, x, kl=kl)

    torch._dynamo.reset()
    value = torch.compile(loss, fullgraph=True)(logits, kl)
    torch.testing.assert_close(value, loss(logits, kl), **SAME_FLOAT32.kw)


@pytest.mark.slow
def test_compile_fullgraph_matches_eager(device):
    torch.manual_seed(0)
    model = TinyVAE().to(device)
    x = (torch.rand(10, 24, device=device) < 0.5).to(torch.uint8)

    def run(fn):
        model.zero_grad()
        torch.manual_seed(123)  # the same in-kernel noise in both runs
        loss = fn(x)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters()]

    eager_loss, eager_grads = run(model)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)
    comp_loss, comp_grads = run(compiled)
    torch.testing.assert_close(comp_loss, eager_loss, **SAME_FLOAT32.kw)
    for a, b in zip(comp_grads, eager_grads):
        torch.testing.assert_close(a, b, **SAME_FLOAT32_GRAD.kw)
    # a second compiled step still matches (no stale state in the compiled backward)
    comp_loss2, comp_grads2 = run(compiled)
    torch.testing.assert_close(comp_loss2, eager_loss, **SAME_FLOAT32.kw)


def test_torch_backend_runs_the_reference(device):
    mu = torch.randn(3, 5, device=device, requires_grad=True)
    with fastvae.backend("torch"):
        z, kl = fastvae.reparameterize_kl(mu, mu)
        ll = fastvae.bernoulli_log_likelihood(mu, torch.rand(3, 5, device=device))
        assert fastvae.get_backend() == "torch"
    assert "fastvae" not in type(z.grad_fn).__name__ and "fastvae" not in type(ll.grad_fn).__name__
    assert fastvae.get_backend() == "triton"
    z, kl = fastvae.reparameterize_kl(mu, mu)
    assert "fastvae" in type(z.grad_fn).__name__


def test_backend_names_are_checked():
    with pytest.raises(ValueError, match="auto"):
        fastvae.set_backend("cuda")


def test_auto_and_triton_choices(monkeypatch):
    cpu = torch.zeros(1)
    fastvae.set_backend("auto")
    monkeypatch.setattr(_backend, "INTERPRET", True)
    assert _backend.use_triton(cpu)
    monkeypatch.setattr(_backend, "INTERPRET", False)
    assert not _backend.use_triton(cpu)  # auto: CPU without the interpreter -> reference
    fastvae.set_backend("triton")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        _backend.use_triton(cpu)
    with pytest.raises(RuntimeError, match="meta"):
        _backend.use_triton(torch.zeros(1, device="meta"))


@pytest.mark.slow
def test_environment_variable_selects_backend():
    code = "import fastvae; print(fastvae.get_backend())"
    env = dict(os.environ, FASTVAE_BACKEND="torch")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "torch"
    env["FASTVAE_BACKEND"] = "bogus"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "FASTVAE_BACKEND" not in out.stdout and "auto" in out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_compile_with_a_changing_batch_size(backend, device):
    # a smaller last batch makes torch.compile go dynamic; both paths must trace symbolically
    def f(mu, logvar, logits, x):
        z, kl = fastvae.reparameterize_kl(mu, logvar)
        return fastvae.elbo_loss(logits, x, kl=kl) + z.square().mean()

    torch._dynamo.reset()
    cf = torch.compile(f, fullgraph=True)
    with fastvae.backend(backend):
        for B in (16, 8, 5):
            mu, logvar = torch.randn(B, 3, device=device), torch.randn(B, 3, device=device)
            logits, x = torch.randn(B, 10, device=device), torch.rand(B, 10, device=device)
            out = cf(mu, logvar, logits, x)
            assert out.shape == () and torch.isfinite(out)


@pytest.mark.slow
@pytest.mark.parametrize("likelihood", fastvae.likelihoods.names())
def test_compile_with_dynamic_shapes_backward(likelihood, device):
    # the likelihood's backward op under symbolic sizes: its fake function used the launchers'
    # cache, which cannot hash them (found by torch.library.opcheck; a TypeError in backward).
    # A count likelihood gets a positive mean, and its log theta and dropout logits
    # (read here: a record the compiled function closes over would make its ints symbolic)
    rec = fastvae.likelihoods.get(likelihood)
    counts = rec.counts
    required = tuple(n for n, d in rec.arguments if d is fastvae.likelihoods.REQUIRED)

    mixture = rec.layout is not None  # the mixture: M = 2 on one channel, its parameters (B, 3 M, 10)
    p_row, x_row = ((6, 10), (1, 10)) if mixture else ((10,), (10,))

    def f(logits, x, mu, logvar):
        made = {"log_theta": lambda: torch.zeros(10, device=logits.device),
                "zero_inflation_logits": lambda: torch.zeros_like(logits), "num_mixtures": lambda: 2}
        kw = {n: made[n]() for n in required}
        return fastvae.elbo_loss(logits.exp() if counts else logits, x, mu, logvar, likelihood=likelihood, **kw)

    torch._dynamo.reset()
    cf = torch.compile(f, fullgraph=True, dynamic=True)
    for B in (6, 9):
        x = (torch.rand(B, *x_row, device=device) < 0.5).to(torch.uint8)
        leaves = [torch.randn(B, *p_row, device=device), torch.randn(B, 3, device=device),
                  torch.randn(B, 3, device=device)]
        leaves = [t.requires_grad_(True) for t in leaves]
        got = torch.autograd.grad(cf(leaves[0], x, *leaves[1:]), leaves)
        want = torch.autograd.grad(f(leaves[0], x, *leaves[1:]), leaves)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, **SAME_FLOAT32_GRAD.kw)


def test_implementation_names_what_runs(monkeypatch):
    cpu = torch.zeros(1)
    monkeypatch.setattr(_backend, "INTERPRET", True)
    assert fastvae.implementation(cpu) == "triton-interpreter"
    with fastvae.backend("torch"):
        assert fastvae.implementation(cpu) == "torch"
    fastvae.set_backend("auto")
    monkeypatch.setattr(_backend, "INTERPRET", False)
    assert fastvae.implementation(cpu) == "torch"  # auto: a CPU tensor without the interpreter
    assert fastvae.get_backend() == "auto"  # the setting, not what runs
    fastvae.set_backend("triton")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        fastvae.implementation(cpu)
    if torch.cuda.is_available():
        assert fastvae.implementation(torch.zeros(1, device="cuda")) == "triton"
