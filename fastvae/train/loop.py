"""The epoch loop: training steps over this rank's shard, the progress bar, timing, divergence
checks, checkpoints (every --save-every steps, at --stop-after or Ctrl-C, after each epoch) and
the per-epoch record of ``metrics.jsonl`` (what its examples/s counts: see the package's
docstring).
"""

import math
import os
import time

import torch

from .checkpoint import append_metrics, CHECKPOINT, save_checkpoint
from .evaluation import evaluate_split
from .interrupt import Interrupted
from .step import kl_weight, validate_first_batch
from .walltime import WallTime

_STOP_AFTER, _INTERRUPT = "stop-after", "interrupt"  # why an epoch stopped early


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class Progress:
    """The tqdm progress bar of rank 0 (nothing when disabled or without tqdm)."""

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


class _EpochTally:
    """This rank's running sums over an epoch, and this invocation's clock for it."""

    def __init__(self, partial, device):
        self.sums = torch.tensor(partial[:3], dtype=torch.float64, device=device)  # loss, log-likelihood, KL
        self.batches = partial[3]
        # a hierarchy's per-level KL (after the four above in a checkpoint's partial sums); None until seen
        self.levels = torch.tensor(partial[4:], dtype=torch.float64, device=device) if len(partial) > 4 else None
        self.t0 = self.logged_t = time.perf_counter()  # timing since; the last progress update
        self.logged = 0  # steps since the last progress update
        self.time, self.timed = 0.0, 0  # this invocation's part of the epoch


class TrainingLoop:
    """Trains ``model`` through ``train_step`` (a TrainStep) over ``loader`` from ``state`` (a
    RunState) to the last epoch, until --stop-after, or until Ctrl-C as ``stop`` (a StopRequest)
    reports it; ``state`` is updated in place and checkpointed to ``--out``. ``targets`` (a
    Targets) turns the loader's batches into the model's; ``valid_x`` is the validation set
    evaluated after each epoch."""

    def __init__(self, args, d, cfg, model, loader, targets, train_step, valid_x, state, stop, clock=None):
        self.args, self.d, self.cfg, self.model, self.loader = args, d, cfg, model, loader
        self.targets, self.train_step, self.valid_x, self.state, self.stop = targets, train_step, valid_x, state, stop
        self.clock = clock or WallTime()  # where this invocation's time goes (walltime.PHASES)
        self.ckpt_path = os.path.join(args.out, CHECKPOINT)
        self.steps_per_epoch = len(loader)
        self.total_steps = self.steps_per_epoch * args.epochs
        self.ran = 0  # steps of this invocation
        self.bar = None

    def run(self):
        """True when the last epoch is done, False when --stop-after stopped this invocation;
        raises Interrupted when Ctrl-C did (each after checkpointing)."""
        self.bar = Progress(self.d.main and not self.args.no_progress, self.total_steps, self.state.step, "train")
        try:
            while self.state.epoch < self.args.epochs:
                reason = self._epoch()
                if reason == _INTERRUPT:
                    raise Interrupted(self._where())
                if reason == _STOP_AFTER:
                    return False
            return True
        finally:
            self.bar.close()

    def checkpoint(self):
        with self.clock.phase("checkpoints"):
            save_checkpoint(self.ckpt_path, self.d, self.cfg, self.model, self.train_step.optimizer,
                            self.train_step.scheduler, self.state)

    def _epoch(self):
        """The rest of the current epoch; None when it ran to its end, else why it stopped
        (_STOP_AFTER, _INTERRUPT), checkpointed. A stop at its last step ends the epoch first."""
        args, s = self.args, self.state
        tally = _EpochTally(s.partial, self.d.device)
        reason = None
        for i, x in enumerate(self.loader.epoch(s.epoch, s.batch), start=s.batch):
            x = self.targets.batch(x, s.step, self.d.rank)
            first = time.perf_counter() if self.ran == 0 else None
            if first is not None:
                validate_first_batch(self.model, x)
            terms = self.train_step(x, s.step)
            self._count(terms, tally)
            if first is not None:  # _count synchronised after it
                self.clock.add("first step", time.perf_counter() - first)
            last = i + 1 == self.steps_per_epoch
            if tally.logged == args.log_every or last:
                self._log(terms, tally)
            reason = self._stop_reason()
            if last:
                break
            if reason or (args.save_every and s.step % args.save_every == 0):
                self._checkpoint_mid_epoch(tally, i + 1)
            if reason:
                return reason
        self._end_epoch(tally)
        if reason is None and self.stop.at_epoch_end():
            reason = _INTERRUPT
        return reason

    def _stop_reason(self):
        """At a step boundary (on every rank): Ctrl-C, --stop-after, or None to go on."""
        if self.stop.at_step():
            return _INTERRUPT
        if self.args.stop_after is not None and self.ran >= self.args.stop_after:
            return _STOP_AFTER
        return None

    def _where(self):
        s = self.state
        if s.batch:
            return f"at step {s.step} (epoch {s.epoch + 1}, batch {s.batch} of {self.steps_per_epoch})"
        return f"at step {s.step}, after epoch {s.epoch}"

    def _count(self, terms, tally):
        tally.sums += torch.stack([terms.loss.detach(), terms.log_likelihood.detach().mean(),
                                   terms.kl.detach().mean()]).double()
        level_kl = getattr(terms, "level_kl", None)  # (levels,) batch means: a hierarchical model's
        if level_kl is not None:
            level_kl = level_kl.detach().double()
            tally.levels = level_kl if tally.levels is None else tally.levels + level_kl
        tally.batches += 1
        self.state.step += 1
        self.ran += 1
        if self.ran == 1:  # the first step of each invocation compiles and warms up: not timed
            self._synchronize()
            tally.t0 = time.perf_counter()
        else:
            self.state.timed_steps += 1
            tally.timed += 1
        tally.logged += 1

    def _log(self, terms, tally):
        """Progress-bar update and a point of the loss curve: one host sync per log interval."""
        levels = getattr(terms, "level_kl", None)  # each level's KL, top first: "kl_levels=3.1/9.8"
        values = torch.stack([terms.loss.detach().float(), terms.log_likelihood.detach().float().mean(),
                              terms.kl.detach().float().mean()])
        if levels is not None:  # in the same transfer
            values = torch.cat([values, levels.detach().float()])
        loss, ll, kl, *levels = values.tolist()
        if not math.isfinite(loss):
            raise TrainingDiverged(f"the loss is {loss} at step {self.state.step}: training diverged (try a lower "
                                   f"--lr, more --warmup-steps, or --amp none)")
        now = time.perf_counter()
        self.state.curve.append((self.state.step, kl - ll))
        extra = {"kl_levels": "/".join(f"{v:.1f}" for v in levels)} if levels else {}
        self.bar.update(tally.logged, loss=f"{loss:.2f}", kl=f"{kl:.2f}", **extra,
                        ex_s=f"{tally.logged * self.args.batch_size * self.d.world / (now - tally.logged_t):.3g}")
        tally.logged, tally.logged_t = 0, now

    def _synchronize(self):
        if self.d.device.type == "cuda":
            torch.cuda.synchronize(self.d.device)

    def _stop_clock(self, tally):
        self._synchronize()
        elapsed = time.perf_counter() - tally.t0
        self.state.train_time += elapsed
        tally.time += elapsed
        self.clock.add("training", elapsed)

    def _checkpoint_mid_epoch(self, tally, batches_done):
        self._stop_clock(tally)
        self.state.batch, self.state.partial = batches_done, tally.sums.tolist() + [tally.batches] + \
            ([] if tally.levels is None else tally.levels.tolist())
        self.checkpoint()
        tally.t0 = time.perf_counter()

    def _end_epoch(self, tally):
        """The epoch's record (training sums over all ranks, validation ELBO), checkpoint, metrics."""
        self._stop_clock(tally)
        d, s = self.d, self.state
        sums = tally.sums if tally.levels is None else torch.cat([tally.sums, tally.levels])
        train = (d.sum(sums.clone()) / (tally.batches * d.world)).tolist()
        if not all(map(math.isfinite, train)):
            raise TrainingDiverged(f"non-finite training loss in epoch {s.epoch + 1}: training diverged")
        with self.clock.phase("validation"):
            valid_neg_elbo, _ = evaluate_split(self.model, self.valid_x, d, None, None)
        record = self._record(train, valid_neg_elbo, tally)
        s.history.append(record)
        s.next_epoch()
        self.checkpoint()
        if d.main:
            append_metrics(self.args.out, record)

    def _record(self, train, valid_neg_elbo, tally):
        args, s, world = self.args, self.state, self.d.world
        return {"epoch": s.epoch + 1, "step": s.step, "train_loss": train[0], "train_neg_elbo": train[2] - train[1],
                "train_log_likelihood": train[1], "train_kl": train[2], "valid_neg_elbo": valid_neg_elbo,
                "lr": self.train_step.lr_at(s.step - 1), "beta": kl_weight(args, s.step - 1),
                "examples": s.step * args.batch_size * world,
                "examples_per_s": tally.timed * args.batch_size * world / tally.time if tally.timed else None,
                **({"train_level_kl": train[3:]} if len(train) > 3 else {})}
