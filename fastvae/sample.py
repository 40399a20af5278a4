"""``python -m fastvae.sample CHECKPOINT``: draw from a trained model.

Loads the model of a ``checkpoint.pt`` written by ``python -m fastvae.train``
(``fastvae.models.load``), draws ``--num`` samples (z ~ N(0, I), decoded to the mean of
p(x | z), as ``model.sample(n)`` does) with ``--seed``, and writes them as a grid of images to
``--out`` (PNG; examples that are not images, e.g. vectors of 10 features, are written with
``--npy`` only) and, with ``--npy``, as a float32 array ``(N, *input_shape)``. With ``--data``
(the data set it was trained on, or another of the same shape) it also writes
``--recon-out``: held-out (test) examples from all over that split beside their
reconstructions, the examples the training command evaluated on when ``--data`` is the
checkpoint's own.

Exit status: 0; 2 for a missing or damaged checkpoint, or bad settings (a one-line message).
"""

import argparse
import dataclasses
import math
import sys

import numpy as np
import torch

try:  # first: a folder named fastvae may hide the package (see fastvae/_shadow.py)
    from fastvae import _shadow  # noqa: F401
except ImportError as e:
    sys.exit(f"python -m fastvae.sample: {e}")

from fastvae import data as fdata  # noqa: E402
from fastvae import likelihoods, saved  # noqa: E402
from fastvae._images import as_images, grid, write_png  # noqa: E402

PROG = "python -m fastvae.sample"


def build_parser():
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[1].replace("\n", " ").replace("``", ""))
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint.pt of python -m fastvae.train")
    p.add_argument("--num", type=int, default=64, help="samples to draw (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="the noise's seed (default: %(default)s)")
    p.add_argument("--out", help="the PNG of the samples' grid (default: samples.png; the mean of p(x | z), "
                                 "values outside [0, 1] clipped)")
    p.add_argument("--npy", help="also save the samples as a float32 .npy array (N, *input_shape)")
    p.add_argument("--data", help="a data set (a built-in name or a path, as --data of python -m fastvae.train): "
                                  "also reconstruct --num of its held-out examples")
    p.add_argument("--data-dir", help="with --data binarized-mnist or mnist: where the files are (default: the "
                                      "checkpoint's, or $FASTVAE_DATA_DIR)")
    p.add_argument("--recon-out", default="reconstructions.png",
                   help="the PNG of the reconstructions: each example, then its reconstruction (default: %(default)s)")
    p.add_argument("--device", help="cuda or cpu (default: cuda if available)")
    return p


def held_out_examples(cfg, data, data_dir, device):
    """The test split of ``data`` as the model reads it (on ``device``): for the checkpoint's
    own data set, the examples its run was evaluated on."""
    from fastvae.train.dataset import random_subset
    from fastvae.train.targets import Targets

    spec = likelihoods.get(cfg["likelihood"])
    same = data == cfg["data"]
    num_test = cfg.get("num_test") if same else None
    if not fdata.is_builtin(data):
        ds = fdata.load_files(data, spec, held_out=(cfg.get("held_out") if same else None) or fdata.HELD_OUT,
                              resize=cfg.get("resize") if same else None)
    elif data == "synthetic-counts":  # one matrix cut into splits: the run's split sizes draw the same test split
        sizes = dict(genes=cfg.get("genes"), num_train=cfg["num_train"], num_valid=num_test) if same else {}
        ds = fdata.load_dataset(data, seed=cfg["seed"], num_test=num_test, **sizes)
    elif data == "shapes":
        ds = fdata.load_dataset(data, seed=cfg["seed"], image_size=cfg["image_size"], channels=cfg["channels"],
                                num_train=1, num_valid=1, num_test=num_test)
    else:
        ds = fdata.load_dataset(data, data_dir or (cfg.get("data_dir") if same else None))
    if not fdata.is_generated(data):  # the training command's fixed random subset of --num-test examples
        ds = dataclasses.replace(ds, test=random_subset(ds.test, num_test, "test", cfg["seed"]))
    ds = ds.to(device)
    targets = Targets(spec, ds, cfg.get("grey") and same, cfg["seed"])
    return targets.split(ds, "test", cfg["seed"] + 2)


def _write_samples(model, a, device):
    gen = torch.Generator(device=device).manual_seed(a.seed)
    samples = model.sample(a.num, generator=gen).cpu()
    images = as_images(samples, model.spec)
    if images is None and a.out is not None:
        raise ValueError(f"the model's examples have shape {model.input_shape}, which is not an image: save the "
                         f"samples with --npy instead of --out")
    if images is not None:
        out = a.out or "samples.png"
        write_png(out, grid(images, math.ceil(math.sqrt(a.num))))
        print(f"wrote {out}: {a.num} samples, {tuple(images.shape[1:])} each")
    if a.npy:
        np.save(a.npy, samples.numpy())
        print(f"wrote {a.npy}: float32 {tuple(samples.shape)}")
    if images is None and not a.npy:
        print(f"the model's examples have shape {model.input_shape}, not an image: pass --npy FILE to save them")


def _write_reconstructions(model, cfg, a, device):
    from fastvae.train.plots import spread_indices

    x = held_out_examples(cfg, a.data, a.data_dir, device)
    if tuple(x.shape[1:]) != tuple(model.input_shape):
        raise ValueError(f"--data {a.data} has examples of shape {tuple(x.shape[1:])}, the model takes "
                         f"{tuple(model.input_shape)}")
    x = x[spread_indices(x.shape[0], a.num).to(x.device)]
    shown = model.spec.targets(x, torch.float32).cpu()  # in the likelihood's units: uint8 0/1 or k/255
    pairs = as_images(torch.stack([shown, model.reconstruct(x).cpu()], 1).flatten(0, 1), model.spec)
    if pairs is None:
        raise ValueError(f"the model's examples have shape {model.input_shape}, which is not an image: no "
                         f"reconstructions to show")
    write_png(a.recon_out, grid(pairs, 2 * math.ceil(math.sqrt(x.shape[0]))))
    print(f"wrote {a.recon_out}: {x.shape[0]} held-out examples of {a.data}, each beside its reconstruction")


def main(argv=None):
    """Entry point; returns the exit status."""
    a = build_parser().parse_args(argv)
    try:
        if a.num < 1:
            raise ValueError(f"--num must be at least 1, got {a.num}")
        device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda: CUDA is not available here; use --device cpu")
        checkpoint = saved.read(a.checkpoint, map_location=device)
        model = saved.model_from(checkpoint, a.checkpoint)
        _write_samples(model, a, device)
        if a.data is not None:
            _write_reconstructions(model, checkpoint["config"], a, device)
    except (ValueError, OSError, ImportError) as e:  # ImportError: pillow, for --data with a folder of images
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
