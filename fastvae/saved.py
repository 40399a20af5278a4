"""``checkpoint.pt`` as a file format: its version, reading it, bringing a checkpoint of an
earlier version up to date, and the trained model in it (``fastvae.models.load``). The
training command writes it (``fastvae.train.checkpoint``) and reads it here for ``--resume``.

Format 1 (``FORMAT_VERSION``): a dict saved with ``torch.save`` holding ``format_version``
(1), ``config`` (the run's resolved configuration: every setting with its value, the input
shape included; see ``fastvae.architectures``), ``model`` (the model's state dict) and the
state ``--resume`` continues from (``optimizer``, ``scheduler``, ``epoch``, ``batch``,
``step``, ``history``, ``curve``, ``partial``, ``train_time``, ``timed_steps``, ``rng``).

Format 0: what the command wrote before checkpoints had a version (fastvae 0.1.0 up to
2026-12-07): the same dict without ``format_version``, its ``config`` with ``None`` for the
settings left at their defaults and no input shape. ``read`` brings it up to format 1: the
input shape from its data settings (``shapes``: ``--channels`` x ``--image-size`` squared; the
two MNIST data sets: 1x28x28), and the defaults that format 1 writes.

A file that is not a checkpoint (damaged, truncated, foreign) or one of a format version this
fastvae does not know is a one-line ValueError naming the file.
"""

import os

import torch

from . import architectures

FORMAT_VERSION = 1
VERSION_KEY = "format_version"
_REQUIRED = ("config", "model")


def _first_line(e, limit=None):
    line = (str(e).strip().splitlines() or [""])[0]
    if limit is not None:  # the first sentence, shortened
        line = line.split(". ")[0]
        line = line if len(line) <= limit else line[:limit - 3] + "..."
    return line


def _default_location(map_location):
    if map_location is None and not torch.cuda.is_available():
        return "cpu"  # a checkpoint saved from a GPU, read where there is none
    return map_location


def read(path, map_location=None) -> dict:
    """The checkpoint at ``path`` as a format-1 dict (``config`` resolved); tensors mapped by
    ``map_location`` as ``torch.load`` maps them (None: where saved, or the CPU where that
    device is missing). A missing file is a FileNotFoundError; anything else that is not a
    checkpoint of a known format, a ValueError naming the file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path}" + (" (a directory: the checkpoint is "
                                                               "<dir>/checkpoint.pt)" if os.path.isdir(path) else ""))
    try:
        saved = torch.load(path, map_location=_default_location(map_location), weights_only=True)
    except Exception as e:  # unpickling, zip and struct errors of a damaged or foreign file
        raise ValueError(f"cannot read {path} ({type(e).__name__}: {_first_line(e, 100)}); it is not a checkpoint "
                         f"written by fastvae's training command, or it is damaged") from e
    missing = [k for k in _REQUIRED if k not in saved] if isinstance(saved, dict) else list(_REQUIRED)
    if missing:
        raise ValueError(f"{path} is not a checkpoint of fastvae's training command (it has no {' or '.join(missing)})")
    version = saved.get(VERSION_KEY, 0)
    if version == 0:
        return dict(saved, config=upgrade_config_0(saved["config"], path), **{VERSION_KEY: FORMAT_VERSION})
    if version != FORMAT_VERSION:
        raise ValueError(f"{path} is a checkpoint of format version {version!r}, which this fastvae does not "
                         f"read (it reads versions 0 to {FORMAT_VERSION}); a newer fastvae wrote it: upgrade "
                         f"fastvae to load it")
    return saved


def _shape_0(config, path):
    # a format-0 configuration's input shape, from its data settings
    data = config.get("data")
    if data == "shapes":
        size = config.get("image_size", 28)
        return [config.get("channels", 1), size, size]
    if data in ("binarized-mnist", "mnist"):
        return [1, 28, 28]
    raise ValueError(f"{path}: a checkpoint without a format version must come from --data shapes, binarized-mnist "
                     f"or mnist, but its data is {data!r}")


def upgrade_config_0(config, path="checkpoint") -> dict:
    """A format-0 ``config`` as format 1 writes it (see the module docstring)."""
    try:
        return architectures.resolve(config, _shape_0(config, path))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: cannot read its configuration ({type(e).__name__}: {_first_line(e)})") from e


def load_model(path, map_location=None):
    """``fastvae.models.load``: the model of the checkpoint at ``path`` (see ``model_from``)."""
    return model_from(read(path, map_location), path)


def model_from(checkpoint, path="checkpoint"):
    """The model of a checkpoint ``read`` returned, built by ``fastvae.architectures`` from its
    configuration, its weights loaded, in eval mode, on the device its tensors were mapped to."""
    try:
        model = architectures.build(checkpoint["config"])
        model.load_state_dict(checkpoint["model"])
    except (KeyError, TypeError, RuntimeError) as e:  # a configuration or weights that do not fit
        raise ValueError(f"{os.fspath(path)}: its model cannot be rebuilt ({type(e).__name__}: "
                         f"{_first_line(e)})") from e
    first = next(iter(checkpoint["model"].values()), None)
    if isinstance(first, torch.Tensor):
        model.to(first.device)
    return model.eval()
