"""One training run from parsed arguments: set-up (resume checks, data, model, optimiser), the
epoch loop, and the end of the run (test evaluation, ``summary.json``, the plots)."""

import os
import platform
import sys

import torch

import fastvae

from .. import __version__
from .. import data as fdata
from ..hierarchical import HierarchicalVAE, level_kl
from .args import check_settings, likelihood_name, num_samples, run_config
from .checkpoint import (
    check_out,
    check_resume,
    load_for_resume,
    make_out,
    restore_checkpoint,
    RunState,
    write_json_atomic,
    write_metrics,
)
from .config import resolve_config
from .dataset import load_data
from .distributed import process_group
from .evaluation import eval_samples, evaluate_split
from .interrupt import StopRequest
from .loop import TrainingLoop
from .plots import write_plots
from .step import initial_model, TrainStep
from .targets import Targets
from .walltime import WallTime


def run(args, clock=None):
    """Trains as ``args`` (from build_parser) say, one process of the run; returns the summary,
    or None when --stop-after stopped this invocation; raises ``Interrupted`` (after the
    checkpoint) when Ctrl-C stopped it. ``clock``: the ``WallTime`` the phases are added to (a
    new one by default), printed at the end."""
    with process_group(args.device) as d:
        return _run(args, d, clock or WallTime())


def _run(args, d, clock):
    """Set-up, loop, end. The order of the set-up is part of the run: the resume checks of the
    settings given come before any work, and the seeds (weights, then each rank's noise) are
    drawn where a resumed run redraws them, so a resumed run continues an unbroken one exactly."""
    check_settings(args)
    cfg = run_config(args, d.world)
    if d.main:
        check_out(args.out)
    with clock.phase("data"):
        saved = load_for_resume(args, cfg, d.main)
        ds = load_data(args, d)
        cfg = resolve_config(cfg, ds, d.device)
        if saved is not None:  # now also the settings resolved from the data
            check_resume(resolve_config(saved["config"], ds, d.device), cfg)
        targets = Targets(likelihood_name(args), ds, args.grey, args.seed)
        loader = fdata.DeviceLoader(ds.train, args.batch_size, seed=args.seed, dynamic=targets.binarize,
                                    rank=d.rank, world_size=d.world)
        valid_x, test_x = targets.split(ds, "valid", args.seed + 1), targets.split(ds, "test", args.seed + 2)
    with clock.phase("model"):
        model = initial_model(args, ds, targets, d.device)
        impl = implementation(model, d.device)
        if d.main:
            make_out(args.out)
        train_step = TrainStep(args, model, d, len(loader) * args.epochs)
        torch.manual_seed(args.seed * 7919 + d.rank + 1)  # the noise differs between ranks
        if saved is None:
            state = RunState()
        else:
            state = restore_checkpoint(saved, d, model, train_step.optimizer, train_step.scheduler)
    with StopRequest(d) as stop:  # from here on Ctrl-C stops at a step boundary, checkpointed
        if d.main:
            write_metrics(args.out, state.history)
            _announce(args, cfg, ds, d, impl, train_step.lr, resumed=saved is not None, step=state.step)
        loop = TrainingLoop(args, d, cfg, model, loader, targets, train_step, valid_x, state, stop, clock)
        finished = loop.run()
    if not finished:
        if d.main:
            print(f"stopped after {loop.ran} steps (step {state.step}); continue with --resume\n{clock.line()}",
                  file=sys.stderr)
        return None
    return _finish(args, d, cfg, model, test_x, state, impl, targets, clock)


# what runs the fused ops, by fastvae.implementation's names, as the console header says it
IMPLEMENTATIONS = {"triton": "Triton kernels on CUDA", "triton-interpreter": "Triton kernels through the interpreter",
                   "torch": "plain PyTorch (fastvae.reference)"}


def implementation(model, device):
    """What computes the model's fused ops on ``device``: "triton", "triton-interpreter" or
    "torch" (--no-fused is always "torch"); a ValueError when the backend cannot run there."""
    if not model.fused:
        return "torch"
    try:
        return fastvae.implementation(torch.empty(0, device=device))
    except RuntimeError as e:  # FASTVAE_BACKEND=triton where the kernels cannot run
        raise ValueError(str(e)) from e


def _announce(args, cfg, ds, d, impl, lr, resumed, step):
    data = args.data + (" (grey, dequantized)" if args.grey else "")
    objective = {"elbo": "ELBO", "iwae": "IWAE", "dreg": "DReG"}[args.objective]
    objective += f" (K={num_samples(args)})" if args.objective != "elbo" else ""
    print(f"fastvae {__version__}: {data} {tuple(ds.shape)} train {ds.train.shape[0]}, {cfg['arch']} VAE, "
          f"{args.likelihood} likelihood, {objective}, on {IMPLEMENTATIONS[impl]}, {d.world} x {d.device.type}, "
          f"global batch {args.batch_size * d.world}, lr {lr:.3g}" + (f", resuming at step {step}" if resumed else ""),
          file=sys.stderr)


# --------------------------------------------------------------------------- the end of the run

def _finish(args, d, cfg, model, test_x, state, impl, targets, clock):
    """Test evaluation on every rank; rank 0 writes summary.json and the plots, then says where
    the wall time went."""
    with clock.phase("test"):
        gen = torch.Generator(device=d.device).manual_seed(args.seed + d.rank)
        test_neg_elbo, test_nll = evaluate_split(model, test_x, d, args, gen)
    backend = "reference" if not model.fused else "triton" if impl != "torch" else "reference (fastvae's CPU path)"
    summary = _summary(args, d, cfg, state, test_neg_elbo, test_nll, backend)
    summary["test_bits_per_dim"] = targets.bits_per_dim(test_nll, tuple(test_x.shape[1:]))
    if isinstance(model, HierarchicalVAE):  # each level's KL on the test set, top first
        summary["test_level_kl"] = level_kl(model, test_x)
    if d.main:
        with clock.phase("plots"):
            _write_results(args, model, test_x, state, summary)
        print(clock.line(), file=sys.stderr)
    return summary


def _summary(args, d, cfg, state, test_neg_elbo, test_nll, backend):
    per_step = args.batch_size * d.world  # examples, all ranks
    last = state.history[-1] if state.history else None
    return {"test_neg_elbo": test_neg_elbo, "test_nll": test_nll,
            "examples_per_s": state.timed_steps * per_step / state.train_time if state.timed_steps else None,
            "eval_samples": eval_samples(args, d.device),
            "train_time_s": state.train_time, "timed_steps": state.timed_steps, "steps": state.step,
            "examples": state.step * per_step,
            "final_train_neg_elbo": last["train_neg_elbo"] if last else None,
            "final_valid_neg_elbo": last["valid_neg_elbo"] if last else None,
            "device": _device_name(d.device), "torch": torch.__version__, "fastvae": __version__,
            "backend": backend, "config": cfg}


def _write_results(args, model, test_x, state, summary):
    write_json_atomic(summary, os.path.join(args.out, "summary.json"))
    if not args.no_plots:
        try:
            write_plots(model, test_x, state.history, state.curve, args.out)
        except ImportError:
            print("matplotlib is not installed: no PNG files (pip install matplotlib)", file=sys.stderr)
    bpd, rate = summary["test_bits_per_dim"], summary["examples_per_s"]
    print(f"test negative ELBO {summary['test_neg_elbo']:.2f}, test NLL (IWAE, K={summary['eval_samples']}) "
          f"{summary['test_nll']:.2f} nats" + (f" ({bpd:.3f} bits/dim)" if bpd is not None else "")
          + (f", KL per level (top first) {'/'.join(f'{v:.2f}' for v in summary['test_level_kl'])}"
             if "test_level_kl" in summary else "")
          + (f", {rate:.4g} examples/s" if rate else ", examples/s not measured (only the first step ran, which "
             "is not timed)") + f" -> {args.out}", file=sys.stderr)


def _device_name(dev):
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({platform.machine()}, {os.cpu_count()} logical cores)"

