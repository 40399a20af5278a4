"""Train a VAE: ``python -m fastvae.train`` (also installed as ``fastvae-train``).

One process per device. Single GPU or CPU::

    python -m fastvae.train --data shapes --arch mlp --batch-size 1024 --epochs 10 --out runs/shapes

Several GPUs (or nodes) through PyTorch's launcher, DistributedDataParallel with NCCL (Gloo on
CPU); ``--batch-size`` is per process, each process trains on its own shard of every epoch::

    torchrun --nproc_per_node 8 -m fastvae.train --data binarized-mnist --batch-size 65536

Writes into ``--out``: ``metrics.jsonl`` (one JSON object per epoch), ``checkpoint.pt``
(written to a temporary file and renamed, so a run killed while saving resumes from the
previous checkpoint; ``--resume`` continues it exactly: weights, optimizer, schedule, RNG and
data order), and at the end ``summary.json`` (test negative ELBO, the importance-sampled test
NLL, examples/s and the configuration), ``samples.png``, ``reconstructions.png`` and
``loss.png``. Only rank 0 writes files. examples/s counts training steps only (all ranks),
timed on the host with the device synchronised, leaving out each invocation's first step
(compilation and warm-up), evaluation and checkpointing.
"""

import contextlib
import math
import os
import platform
import sys
import time

import torch

from .. import __version__, data as fdata
from ..models import ConvVAE, MLPVAE
from .args import build_parser, prog_name, run_config
from .checkpoint import (CHECKPOINT, append_metrics, load_for_resume, rng_state, save_atomic, set_rng_state,
                         write_json_atomic, write_metrics)
from .dataset import load_data, random_subset
from .distributed import Dist, process_group
from .evaluation import eval_samples, evaluate_split
from .plots import write_plots

class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


# --------------------------------------------------------------------------- pieces

def build_model(args, shape):
    if args.arch == "mlp":
        if args.conv_channels is not None:
            raise ValueError("--conv-channels is for --arch conv; the MLP takes --hidden")
        return MLPVAE(shape, hidden=args.hidden or (400,), latent_dim=args.latent_dim, activation=args.activation,
                      fused=args.fused)
    if args.hidden is not None:
        raise ValueError("--hidden is for --arch mlp; the conv VAE takes --conv-channels")
    return ConvVAE(shape, latent_dim=args.latent_dim, channels=args.conv_channels, activation=args.activation,
                   fused=args.fused)


class Objective(torch.nn.Module):
    """The model's loss as a module, so DistributedDataParallel (which hooks ``forward``) and
    ``torch.compile`` see the whole step."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, beta):
        return self.model.loss(x, beta=beta, return_terms=True)


def lr_factor(args, step, total_steps):
    """Multiplier of the scaled learning rate at ``step`` (0-based): warm-up, then the schedule."""
    if args.warmup_steps and step < args.warmup_steps:
        return (step + 1) / args.warmup_steps
    if args.schedule == "cosine":
        span = max(1, total_steps - args.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - args.warmup_steps) / span)))
    return 1.0


def scaled_lr(args, world):
    power = {"sqrt": 0.5, "linear": 1.0, "none": 0.0}[args.lr_scaling]
    return args.lr * (args.batch_size * world / args.base_batch_size) ** power


def kl_weight(args, step):
    return args.beta * min(1.0, (step + 1) / args.kl_warmup) if args.kl_warmup else args.beta


class Progress:
    def __init__(self, enabled, total, initial, desc):
        self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True)
            except ImportError:  # tqdm is a dependency; a bare install still trains, quietly
                pass

    def update(self, n, **postfix):
        if self.bar is not None:
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------- the run

def run(args):
    with process_group(args.device) as d:
        return _run(args, d)


def _run(args, d):
    dev = d.device
    cfg = run_config(args, d.world)
    ckpt_path = os.path.join(args.out, CHECKPOINT)
    state = load_for_resume(args, cfg, d.main)
    ds = load_data(args, d)
    loader = fdata.DeviceLoader(ds.train, args.batch_size, seed=args.seed, dynamic=ds.dynamic,
                                rank=d.rank, world_size=d.world)
    valid_x, test_x = ds.binarized("valid", args.seed + 1), ds.binarized("test", args.seed + 2)

    torch.manual_seed(args.seed)  # identical initial weights on every rank
    model = build_model(args, ds.shape).to(dev)
    if args.output_bias_init:  # summed as float64 on the fly: no float copy of the data set
        means = ds.train.sum(0, dtype=torch.float64) / (ds.train.shape[0] * (255.0 if ds.dynamic else 1.0))
        model.init_output_bias(means)
    if d.main:
        os.makedirs(args.out, exist_ok=True)
    lr = scaled_lr(args, d.world)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = len(loader)
    total_steps = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(args, s, total_steps))
    objective = Objective(model)
    if d.world > 1:
        objective = torch.nn.parallel.DistributedDataParallel(objective)
    step_fn = torch.compile(objective) if args.compile else objective

    epoch, start, step = 0, 0, 0
    history, curve, partial, train_time, timed = [], [], [0.0, 0.0, 0.0, 0], 0.0, 0
    torch.manual_seed(args.seed * 7919 + d.rank + 1)  # the noise differs between ranks
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        epoch, start, step = state["epoch"], state["batch"], state["step"]
        history, curve, partial = state["history"], state["curve"], state["partial"][d.rank]
        train_time, timed = state["train_time"], state["timed_steps"]
        set_rng_state(state["rng"][d.rank], dev)
    if d.main:
        write_metrics(args.out, history)
        print(f"fastvae {__version__}: {args.data} {tuple(ds.shape)} train {ds.train.shape[0]}, {args.arch} VAE, "
              f"{'fused' if args.fused else 'reference'} ops, {d.world} x {dev.type}, global batch "
              f"{args.batch_size * d.world}, lr {lr:.3g}" + (f", resuming at step {step}" if state else ""),
              file=sys.stderr)

    def checkpoint(ep, batch):
        rngs, partials = d.gather(rng_state(dev)), d.gather(partial)  # every rank's
        if d.main:
            save_atomic({"config": cfg, "model": model.state_dict(), "optimizer": opt.state_dict(),
                         "scheduler": sched.state_dict(), "epoch": ep, "batch": batch, "step": step,
                         "history": history, "curve": curve, "partial": partials, "train_time": train_time,
                         "timed_steps": timed,
                         "rng": rngs}, ckpt_path)
        d.barrier()

    autocast = (torch.autocast(dev.type, dtype=torch.bfloat16) if args.amp == "bf16"
                else contextlib.nullcontext())
    bar = Progress(d.main and not args.no_progress, total_steps, step, "train")
    ran = 0
    stopped = False
    while epoch < args.epochs and not stopped:
        sums = torch.tensor(partial[:3], dtype=torch.float64, device=dev)
        batches = partial[3]
        t0, logged, logged_t = time.perf_counter(), 0, time.perf_counter()
        epoch_time, epoch_timed = 0.0, 0  # this invocation's part of the epoch
        for i, x in enumerate(loader.epoch(epoch, start), start=start):
            with autocast:
                terms = step_fn(x, kl_weight(args, step))
            opt.zero_grad(set_to_none=True)
            terms.loss.backward()
            opt.step()
            lr_used = opt.param_groups[0]["lr"]
            sched.step()
            sums += torch.stack([terms.loss.detach(), terms.log_likelihood.detach().mean(),
                                 terms.kl.detach().mean()]).double()
            batches += 1
            step += 1
            ran += 1
            if ran == 1:  # the first step of each invocation compiles and warms up: not timed
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                t0 = time.perf_counter()
            else:
                timed += 1
                epoch_timed += 1
            logged += 1
            if logged == args.log_every or i + 1 == steps_per_epoch:
                # one host sync per log interval
                loss, ll, kl = torch.stack([terms.loss.detach().float(), terms.log_likelihood.detach().mean(),
                                            terms.kl.detach().mean()]).tolist()
                if not math.isfinite(loss):
                    raise TrainingDiverged(f"the loss is {loss} at step {step}: training diverged (try a lower "
                                           f"--lr, more --warmup-steps, or --amp none)")
                now = time.perf_counter()
                curve.append((step, kl - ll))
                bar.update(logged, loss=f"{loss:.2f}", kl=f"{kl:.2f}",
                           ex_s=f"{logged * args.batch_size * d.world / (now - logged_t):.3g}")
                logged, logged_t = 0, now
            stop_now = args.stop_after is not None and ran >= args.stop_after
            if stop_now or (args.save_every and step % args.save_every == 0 and i + 1 < steps_per_epoch):
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                train_time += time.perf_counter() - t0
                epoch_time += time.perf_counter() - t0
                partial = sums.tolist() + [batches]
                checkpoint(epoch, i + 1)
                t0 = time.perf_counter()
                if stop_now:
                    stopped = True
                    break
        if stopped:
            break
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        train_time += time.perf_counter() - t0
        epoch_time += time.perf_counter() - t0
        train = (d.sum(sums.clone()) / (batches * d.world)).tolist()
        if not all(map(math.isfinite, train)):
            raise TrainingDiverged(f"non-finite training loss in epoch {epoch + 1}: training diverged")
        valid_neg_elbo, _ = evaluate_split(model, valid_x, d, None, None)
        examples = step * args.batch_size * d.world
        record = {"epoch": epoch + 1, "step": step, "train_loss": train[0], "train_neg_elbo": train[2] - train[1],
                  "train_log_likelihood": train[1], "train_kl": train[2], "valid_neg_elbo": valid_neg_elbo,
                  "lr": lr_used, "beta": kl_weight(args, step - 1), "examples": examples,
                  "examples_per_s": epoch_timed * args.batch_size * d.world / epoch_time if epoch_timed else None}
        history.append(record)
        epoch, start, partial = epoch + 1, 0, [0.0, 0.0, 0.0, 0]
        checkpoint(epoch, 0)
        if d.main:
            append_metrics(args.out, record)
    bar.close()
    if stopped:
        if d.main:
            print(f"stopped after {ran} steps (step {step}); continue with --resume", file=sys.stderr)
        return None

    gen = torch.Generator(device=dev).manual_seed(args.seed + d.rank)
    test_neg_elbo, test_nll = evaluate_split(model, test_x, d, args, gen)
    examples = step * args.batch_size * d.world
    summary = {"test_neg_elbo": test_neg_elbo, "test_nll": test_nll,
               "examples_per_s": timed * args.batch_size * d.world / train_time if timed else None,
               "eval_samples": eval_samples(args, dev),
               "train_time_s": train_time, "timed_steps": timed, "steps": step, "examples": examples,
               "final_train_neg_elbo": history[-1]["train_neg_elbo"] if history else None,
               "final_valid_neg_elbo": history[-1]["valid_neg_elbo"] if history else None,
               "device": (torch.cuda.get_device_name(dev) if dev.type == "cuda" else
                          f"cpu ({platform.machine()}, {os.cpu_count()} logical cores)"),
               "torch": torch.__version__, "fastvae": __version__, "backend": _backend_used(model, test_x),
               "config": cfg}
    if d.main:
        write_json_atomic(summary, os.path.join(args.out, "summary.json"))
        if not args.no_plots:
            try:
                write_plots(model, test_x, history, curve, args.out)
            except ImportError:
                print("matplotlib is not installed: no PNG files (pip install matplotlib)", file=sys.stderr)
        print(f"test negative ELBO {test_neg_elbo:.2f}, test NLL (IWAE, K={summary['eval_samples']}) "
              f"{test_nll:.2f} nats, {summary['examples_per_s'] or float('nan'):.4g} examples/s -> {args.out}", file=sys.stderr)
    return summary


def _backend_used(model, x):
    if not model.fused:
        return "reference"
    from .._backend import use_triton
    return "triton" if use_triton(x) else "reference (fastvae's CPU path)"


def main(argv=None):
    """Entry point; returns the exit status (2 with a one-line message on bad settings or data)."""
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except (ValueError, TypeError, OSError) as e:  # bad settings, missing data, unusable --out
        print(f"{prog_name()}: error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"{prog_name()}: error: {e}", file=sys.stderr)
        return 1
    return 0

