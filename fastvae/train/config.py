"""The run configuration resolved: every setting with the value the run uses, as
``checkpoint.pt`` and ``summary.json`` keep it, so that nothing reading them needs to know a
default. ``None`` is left only where a setting does not apply (``hidden`` for ``--arch conv``,
``logscale`` for a likelihood without a scale, ``samples`` for the ELBO, ``data_dir``,
``held_out`` and ``resize`` for data they do not concern) or means "none" (``stop_after``).

Resolved here: the model's settings and ``input_shape`` (``fastvae.architectures``), K of the
importance-weighted objectives, the split sizes (``num_train``, ``num_test``: the examples the
run has), the data directory, ``--held-out``, the device, and the evaluation's K and rows per
call. A configuration that is already resolved (a checkpoint's) resolves to itself, and a
format-0 one (``fastvae.saved``) to what format 1 would have written for the same run.
"""

from types import SimpleNamespace

from .. import architectures
from .. import data as fdata
from .args import num_samples
from .evaluation import eval_rows, eval_samples


def resolve_config(cfg, ds, device):
    """``cfg`` (``args.run_config``'s dict, or a saved one) resolved for the data set ``ds``
    (the run's ``Dataset``) on ``device``: a new dict. Only settings without a value are filled
    in (a saved configuration keeps its own, so comparing it with this run's says what differs)."""
    settings = SimpleNamespace(**cfg)
    out = architectures.resolve(cfg, cfg.get("input_shape") or ds.shape)
    own = not fdata.is_builtin(cfg["data"])
    defaults = dict(
        samples=num_samples(settings) if cfg["objective"] != "elbo" else None,
        num_train=int(ds.train.shape[0]),
        num_test=int(ds.test.shape[0]),
        data_dir=_data_dir(cfg),
        held_out=fdata.HELD_OUT if own else None,
        genes=int(ds.shape[0]) if cfg["data"] == "synthetic-counts" else None,
        resize=None,
        device=str(device),
        eval_samples=eval_samples(settings, device),
        eval_rows=eval_rows(settings, ds.shape),
    )
    out.update({k: v for k, v in defaults.items() if out.get(k) is None})
    return out


def _data_dir(cfg):
    # the directory the files of a built-in data set come from; None where there are none
    if fdata.is_generated(cfg["data"]) or not fdata.is_builtin(cfg["data"]):
        return None
    try:
        return fdata.resolve_dir(cfg["data"], cfg.get("data_dir"))[0]
    except FileNotFoundError:  # the data was loaded, so this does not happen; keep what was given
        return cfg.get("data_dir")
