"""The training-step case: one optimizer step (zero_grad, loss, backward, Adam) of the MLP or
the conv VAE of ``fastvae.models`` on uint8 1x28x28 images, four ways from the same initial
weights: ``eager`` and ``compile`` (the unfused model, plain and under ``torch.compile``),
``fastvae`` and ``fastvae_compile`` (the fused model, plain and compiled)."""

import copy

import torch

TRAIN_TOL = 1e-2  # whole models: convolutions may run in TF32 and pick different algorithms


def models():
    """``fastvae.models``, or None where it is missing."""
    try:
        from fastvae import models
    except ImportError:
        return None
    return models


def _make_model(models, name, fused):
    if name == "mlp":
        return models.MLPVAE(input_shape=(1, 28, 28), hidden=(400,), latent_dim=40, activation="relu", fused=fused)
    return models.ConvVAE(input_shape=(1, 28, 28), latent_dim=32, fused=fused)


def skip(dtypes):
    """Why the training step cannot run here (for these ``--dtype``), or None."""
    if models() is None:
        return "models not available (fastvae.models is missing); skipped"
    if "float32" not in dtypes:
        return "the models train in float32 only; skipped for this --dtype"
    return None


def train_variants(case, c, dev):
    """The training steps of one model, same initial weights, each with its own Adam."""
    found = models()
    if found is None:
        raise RuntimeError("models not available (fastvae.models is missing)")
    torch.manual_seed(0)
    base = _make_model(found, c.model, fused=False).to(dev)
    x = torch.randint(0, 2, (c.batch, 1, 28, 28), dtype=torch.uint8, device=dev)
    eps = torch.randn(c.batch, base.latent_dim, device=dev)
    return adam_variants(case, base, x, eps, lambda model: model.loss) + (TRAIN_TOL,)


def adam_variants(case, base, x, eps, loss_of):
    """``(variants, names)`` of the training steps of ``base``'s copies (same initial weights),
    one per implementation of ``case``, each with its own Adam: ``fastvae*`` fused, the others
    not, ``*compile`` compiled. ``loss_of(model)``: its loss ``f(x, eps=None)``. The check runs
    in eval mode (dropout off: the implementations see the same network)."""
    variants = {}
    for impl in case.impls:
        model = copy.deepcopy(base)
        model.fused = impl.startswith("fastvae")
        fn = loss_of(model)
        loss = torch.compile(fn, dynamic=False) if impl.endswith("compile") else fn
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        params = list(model.parameters())

        def check(loss=loss, params=params, model=model):
            model.eval()
            value = loss(x, eps=eps)
            out = [value.detach()] + list(torch.autograd.grad(value, params))
            model.train()
            return out

        def step(_=None, loss=loss, opt=opt):
            opt.zero_grad(set_to_none=True)
            loss(x).backward()
            opt.step()

        variants[impl] = (check, {"train": (None, step)})
    return variants, ["loss"] + [f"grad {n}" for n, _ in base.named_parameters()]
