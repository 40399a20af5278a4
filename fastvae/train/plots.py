"""The PNG files at the end of a run: ``samples.png``, ``reconstructions.png`` and ``loss.png``
(matplotlib is imported only here, and only when plotting).

``reconstructions.png`` shows the test examples at ``spread_indices``: one drawn at random from
each of 32 equal stretches of the test split, the same every run. Test files may be sorted
(MNIST's are, by digit), so the first 32 would all be zeros; 32 stretches of a file sorted into
10 classes of roughly equal size put at least 3 examples in every class. Binarized MNIST has no
labels, so "every class" can only mean this: examples from all over the file.
"""

import os

import torch

from .._images import as_images, grid

RECONSTRUCTIONS = 32  # test examples in reconstructions.png


def spread_indices(n, k=RECONSTRUCTIONS, seed=0):
    """``k`` sorted indices into ``n`` examples: one drawn at random from each of ``k`` equal
    stretches ``[i n / k, (i + 1) n / k)`` of them (all ``n`` when ``n <= k``), fixed by ``seed``."""
    if n <= k:
        return torch.arange(n)
    starts, ends = torch.arange(k) * n // k, torch.arange(1, k + 1) * n // k
    offsets = torch.rand(k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return starts + (offsets * (ends - starts)).long()


def write_plots(model, test_x, history, curve, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gen = torch.Generator(device=test_x.device).manual_seed(0)
    samples = as_images(model.sample(64, generator=gen).cpu(), model.spec)
    if samples is not None:  # examples that are not images (a vector of 10 features) get no pictures
        plt.imsave(os.path.join(out, "samples.png"), grid(samples.clamp(0, 1), 8), cmap="gray", vmin=0, vmax=1)
        x = test_x[spread_indices(test_x.shape[0]).to(test_x.device)]
        shown = model.spec.targets(x, torch.float32).cpu()  # in the likelihood's units: uint8 0/1 or k/255
        pairs = as_images(torch.stack([shown, model.reconstruct(x).cpu()], 1).flatten(0, 1), model.spec)
        plt.imsave(os.path.join(out, "reconstructions.png"), grid(pairs.clamp(0, 1), 16), cmap="gray", vmin=0, vmax=1)

    fig, ax = plt.subplots(figsize=(6, 4))
    if curve:
        steps, losses = zip(*curve)
        ax.plot(steps, losses, lw=1, alpha=0.7, label="train (batch at each logged step)")
    if history:
        ax.plot([h["step"] for h in history], [h["valid_neg_elbo"] for h in history], "o-", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("negative ELBO (nats per example)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "loss.png"), dpi=100)
    plt.close(fig)
