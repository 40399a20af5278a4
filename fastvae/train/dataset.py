"""The data set of a run on this rank's device: a built-in one (downloaded if asked, by rank 0
only) or your own files (``--data PATH``), with the fixed random subsets that
``--num-train``/``--num-test`` ask of MNIST and of your own data."""

import dataclasses

import torch

from .. import data as fdata
from .args import likelihood_name


def load_data(args, d):
    """The data set on the device; --num-train/--num-test subsets of MNIST and of your own data
    are fixed random ones (the files are not in random order), shapes are generated at that
    size (the synthetic counts too)."""
    if not fdata.is_builtin(args.data):
        return _subsets(_own_data(args), args).to(d.device)
    if args.data == "synthetic-counts":
        return fdata.load_dataset(args.data, seed=args.seed, genes=args.genes, num_train=args.num_train,
                                  num_valid=args.num_test, num_test=args.num_test).to(d.device)
    if args.download:
        if d.main:  # one process downloads; the others wait for the files
            try:
                fdata.download(args.data, args.data_dir)
            except RuntimeError as e:  # no network: the message says where to put the files
                raise OSError(str(e)) from e
        d.barrier()
    if args.data == "shapes":
        return fdata.load_dataset("shapes", seed=args.seed, image_size=args.image_size, channels=args.channels,
                                  num_train=args.num_train, num_valid=args.num_test,
                                  num_test=args.num_test).to(d.device)
    if args.image_size != 28 or args.channels != 1:
        raise ValueError(f"--image-size and --channels are for --data shapes; {args.data} is 1x28x28")
    ds = fdata.load_dataset(args.data, args.data_dir, seed=args.seed)
    return _subsets(ds, args).to(d.device)


def _subsets(ds, args):
    splits = {name: random_subset(getattr(ds, name), n, name, args.seed)
              for name, n in (("train", args.num_train), ("valid", args.num_test), ("test", args.num_test))}
    return dataclasses.replace(ds, **splits)


def _own_data(args):
    """--data PATH: your file or folder of images, checked for --likelihood."""
    try:
        return fdata.load_files(args.data, likelihood_name(args), held_out=args.held_out or fdata.HELD_OUT,
                                resize=args.resize)
    except ModuleNotFoundError as e:  # pillow, for a folder of images
        raise ValueError(str(e)) from e


def random_subset(x, n, name, seed):
    """``n`` examples of the ``name`` split ``x`` ("train", "valid" or "test"), drawn at random
    with ``seed`` and kept in file order: the same every run; all of ``x`` when ``n`` is None."""
    if n is None:
        return x
    if n > x.shape[0]:
        raise ValueError(f"asked for {n} {name} examples, the {name} split has {x.shape[0]}")
    g = torch.Generator().manual_seed(seed + 1000 * ("train", "valid", "test").index(name))
    return x[torch.randperm(x.shape[0], generator=g)[:n].sort().values]
