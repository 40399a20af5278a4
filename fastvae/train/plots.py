"""The PNG files at the end of a run: ``samples.png``, ``reconstructions.png`` and ``loss.png``
(matplotlib is imported only here, and only when plotting)."""

import math
import os

import torch


def _grid(images, nrow):
    """(N, C, H, W) in [0, 1] -> (rows*H, nrow*W, C) numpy image with 1-pixel gaps."""
    n, c, h, w = images.shape
    rows = math.ceil(n / nrow)
    canvas = torch.ones(c, rows * (h + 1) - 1, nrow * (w + 1) - 1)
    for i in range(n):
        r, q = divmod(i, nrow)
        canvas[:, r * (h + 1):r * (h + 1) + h, q * (w + 1):q * (w + 1) + w] = images[i]
    img = canvas.permute(1, 2, 0).numpy()
    return img[..., 0] if c == 1 else img


def write_plots(model, test_x, history, curve, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gen = torch.Generator(device=test_x.device).manual_seed(0)
    samples = model.sample(64, generator=gen).cpu()
    plt.imsave(os.path.join(out, "samples.png"), _grid(samples, 8), cmap="gray", vmin=0, vmax=1)
    x = test_x[:32]
    recon = model.reconstruct(x).cpu()
    pairs = torch.stack([x.cpu().float(), recon], 1).flatten(0, 1)  # input, reconstruction, ...
    plt.imsave(os.path.join(out, "reconstructions.png"), _grid(pairs, 16), cmap="gray", vmin=0, vmax=1)

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
