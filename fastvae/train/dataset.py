"""The data set of a run on this rank's device: downloaded if asked (by rank 0 only), with the
fixed random subsets that ``--num-train``/``--num-test`` ask of MNIST."""

import torch

from .. import data as fdata


def load_data(args, d):
    """The data set on the device; --num-train/--num-test subsets of MNIST are fixed random ones
    (the files are not in random order), shapes are generated at that size."""
    if args.download and args.data != "shapes":
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
    splits = [random_subset(getattr(ds, name), n, name, args.seed)
              for name, n in (("train", args.num_train), ("valid", args.num_test), ("test", args.num_test))]
    return fdata.Dataset(ds.name, *splits, dynamic=ds.dynamic).to(d.device)


def random_subset(x, n, name, seed):
    """``n`` examples of the ``name`` split ``x`` ("train", "valid" or "test"), drawn at random
    with ``seed`` and kept in file order: the same every run; all of ``x`` when ``n`` is None."""
    if n is None:
        return x
    if n > x.shape[0]:
        raise ValueError(f"asked for {n} {name} examples, the {name} split has {x.shape[0]}")
    g = torch.Generator().manual_seed(seed + 1000 * ("train", "valid", "test").index(name))
    return x[torch.randperm(x.shape[0], generator=g)[:n].sort().values]
