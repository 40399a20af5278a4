"""The run directory: ``checkpoint.pt`` and the checks that let ``--resume`` continue a run
exactly, RNG state, ``metrics.jsonl``, and writes that a killed process cannot leave half done.
The checkpoint's format (its version, reading it, older versions) is ``fastvae.saved``."""

import dataclasses
import json
import os

import torch

from .. import saved as saved_format

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"

# configuration that must match for --resume to continue the same run
_SAME_RUN = ("data", "input_shape", "image_size", "channels", "genes", "num_train", "num_test", "held_out", "resize",
             "arch", "latent_dim", "hidden", "conv_channels", "activation", "batch_size", "world_size", "seed",
             "fused", "amp", "lr", "lr_scaling", "base_batch_size", "warmup_steps", "schedule", "beta",
             "kl_warmup", "grey", "likelihood", "logscale", "objective", "samples")
_SAME_HIERARCHY = ("hierarchical_net", "latent_dims", "free_bits")  # and for --arch hierarchical these


# what save_checkpoint writes
_SAVED_KEYS = frozenset((saved_format.VERSION_KEY, "config", "model", "optimizer", "scheduler", "epoch", "batch",
                         "step", "history", "curve", "partial", "train_time", "timed_steps", "rng"))


# --------------------------------------------------------------------------- atomic writes

def save_atomic(obj, path):
    """torch.save to a temporary file, flushed to disk, then renamed over ``path``."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json_atomic(obj, path):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- RNG state

def rng_state(device):
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state, device):
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# --------------------------------------------------------------------------- the run's state

def _no_partial_sums():
    return [0.0, 0.0, 0.0, 0]


@dataclasses.dataclass
class RunState:
    """Where a run stands: what a checkpoint holds besides weights, optimiser, schedule and RNG."""
    epoch: int = 0  # epochs done
    batch: int = 0  # batches of epoch ``epoch`` done (where to continue it)
    step: int = 0  # optimisation steps done
    history: list = dataclasses.field(default_factory=list)  # one record per epoch, as in metrics.jsonl
    curve: list = dataclasses.field(default_factory=list)  # (step, training neg. ELBO) at each logged step
    # this rank's sums over the epoch so far: loss, log-likelihood, KL, batches
    partial: list = dataclasses.field(default_factory=_no_partial_sums)
    train_time: float = 0.0  # seconds of timed training steps, all invocations
    timed_steps: int = 0

    def next_epoch(self):
        self.epoch, self.batch, self.partial = self.epoch + 1, 0, _no_partial_sums()


def save_checkpoint(path, d, cfg, model, optimizer, scheduler, run):
    """Gathers every rank's RNG state and partial sums; rank 0 writes ``path`` atomically (format
    ``fastvae.saved.FORMAT_VERSION``, ``cfg`` the resolved configuration); all ranks wait for it."""
    rngs, partials = d.gather(rng_state(d.device)), d.gather(run.partial)  # every rank's
    if d.main:
        save_atomic({saved_format.VERSION_KEY: saved_format.FORMAT_VERSION, "config": cfg,
                     "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "epoch": run.epoch, "batch": run.batch, "step": run.step,
                     "history": run.history, "curve": run.curve, "partial": partials, "train_time": run.train_time,
                     "timed_steps": run.timed_steps, "rng": rngs}, path)
    d.barrier()


def restore_checkpoint(saved, d, model, optimizer, scheduler):
    """Loads ``saved`` (from load_for_resume) into the model, optimiser and scheduler, sets this
    rank's RNG state, and returns where the run stands."""
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    run = RunState(epoch=saved["epoch"], batch=saved["batch"], step=saved["step"], history=saved["history"],
                   curve=saved["curve"], partial=saved["partial"][d.rank], train_time=saved["train_time"],
                   timed_steps=saved["timed_steps"])
    set_rng_state(saved["rng"][d.rank], d.device)
    return run


# --------------------------------------------------------------------------- the run directory

def check_out(out):
    """Refuses, before any work, an --out that cannot be the run's directory: empty, an existing
    file, a path under a file, or a place this user may not write (an OSError that says so)."""
    if not out:
        raise OSError("--out is empty: give the directory the run should write into")
    if os.path.exists(out) and not os.path.isdir(out):
        raise OSError(f"--out {out} is a file, but --out is the directory the run writes its files into: "
                      f"choose another path (or remove the file)")
    existing = os.path.abspath(out)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise OSError(f"--out {out} cannot be created: {existing} is a file, not a directory; choose another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OSError(f"--out {out}: no permission to write in {existing}; choose a directory you can write to")


def make_out(out):
    """Creates --out (and its parents) if needed, or says in words why it cannot."""
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise OSError(f"--out {out}: cannot create the directory ({e.strerror or e}); choose another path") from e


# --------------------------------------------------------------------------- starting or resuming

def load_for_resume(args, cfg, is_main):
    """The saved checkpoint to continue (``--resume``), or None for a new run; refuses a
    missing checkpoint, settings given now that differ from the saved ones (those left at a
    default that depends on the data are compared once the data is loaded: ``check_resume``
    again), or a new run over an old one in ``--out``."""
    path = os.path.join(args.out, CHECKPOINT)
    if args.resume:
        if not os.path.exists(path):
            raise FileNotFoundError(f"--resume: no checkpoint at {path}; --resume continues the run whose "
                                    f"--out holds {CHECKPOINT} (leave --resume out to start a new run)")
        saved = read_checkpoint(path)
        check_resume(saved["config"], cfg, given_only=True)
        return saved
    if is_main and os.path.exists(path):
        raise FileExistsError(f"{args.out} already holds a run ({CHECKPOINT}); pass --resume to continue "
                              f"it or choose another --out")
    return None


def read_checkpoint(path):
    """The saved run in ``path`` (a format-0 one brought up to date by ``fastvae.saved.read``); a
    ValueError naming the file when it is not one."""
    try:
        saved = saved_format.read(path, map_location="cpu")
    except ValueError as e:
        raise ValueError(f"--resume: {e}") from e
    missing = _SAVED_KEYS - set(saved)
    if missing:
        raise ValueError(f"--resume: {path} is not a checkpoint of this command (it lacks "
                         f"{', '.join(sorted(missing))})")
    return saved


def check_resume(saved, cfg, given_only=False):
    """A ValueError listing the settings of ``cfg`` that differ from the ``saved`` configuration;
    ``given_only``: only those with a value on both sides (the others, resolved, are compared
    once the data is loaded)."""
    keys = _SAME_RUN + (("epochs",) if cfg.get("schedule") == "cosine" else ())  # cosine: epochs set the curve
    keys += _SAME_HIERARCHY if cfg.get("arch") == "hierarchical" else ()
    if given_only:
        keys = [k for k in keys if saved.get(k) is not None and cfg.get(k) is not None]
    diff = [f"{k}: checkpoint {saved.get(k)!r}, now {cfg.get(k)!r}" for k in keys if saved.get(k) != cfg.get(k)]
    if diff:
        raise ValueError("--resume continues the same run, but these settings differ from the checkpoint's: "
                         + "; ".join(diff))


# --------------------------------------------------------------------------- metrics.jsonl

def write_metrics(out, history):
    """``metrics.jsonl`` anew from the history (a resumed run has no duplicate lines)."""
    with open(os.path.join(out, METRICS), "w") as f:
        for h in history:
            f.write(json.dumps(h) + "\n")


def append_metrics(out, record):
    with open(os.path.join(out, METRICS), "a") as f:
        f.write(json.dumps(record) + "\n")
