"""What one training step computes: the model, the objective (under DistributedDataParallel and
``torch.compile`` when asked), Adam with the scaled learning rate and its schedule, and the KL
weight's warm-up."""

import contextlib
import math

import torch

from .. import architectures
from .args import num_samples


def build_model(args, shape):
    """The model of the settings ``args`` for examples of ``shape``, by the one builder that
    ``fastvae.models.load`` also rebuilds checkpoints with (``fastvae.architectures``)."""
    return architectures.build(architectures.resolve(vars(args), shape))


def initial_model(args, ds, targets, device):
    """The model on ``device`` with the same initial weights on every rank; with
    --output-bias-init the decoder's output bias starts where the model predicts the training
    pixel means (``targets``: the run's Targets)."""
    torch.manual_seed(args.seed)  # identical initial weights on every rank
    model = build_model(args, ds.shape).to(device)
    if args.output_bias_init:
        model.init_output_bias(targets.pixel_means(ds.train))
    return model


class Objective(torch.nn.Module):
    """The model's loss as a module, so DistributedDataParallel (which hooks ``forward``) and
    ``torch.compile`` see the whole step: the negative ELBO, or with --objective iwae/dreg the
    K-sample importance-weighted loss. Returns ``ELBOTerms``."""

    def __init__(self, model, objective="elbo", samples=1):
        super().__init__()
        self.model, self.objective, self.samples = model, objective, samples

    def forward(self, x, beta):
        if self.objective == "elbo":
            return self.model.loss(x, beta=beta, return_terms=True)
        return self.model.iwae_loss(x, self.samples, estimator=self.objective, return_terms=True)


# --------------------------------------------------------------------------- schedules

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


# --------------------------------------------------------------------------- the step

class TrainStep:
    """One optimisation step of ``model``: the loss (bf16 autocast with --amp bf16), backward,
    Adam, then the learning-rate schedule. ``d`` is the run's ``Dist``. Holds the optimiser and
    the scheduler that a checkpoint saves."""

    def __init__(self, args, model, d, total_steps):
        self.args, self.total_steps = args, total_steps
        self.lr = scaled_lr(args, d.world)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer,
                                                           lambda s: lr_factor(args, s, total_steps))
        objective = Objective(model, args.objective, num_samples(args))
        if d.world > 1:
            objective = torch.nn.parallel.DistributedDataParallel(objective)
        self.objective = torch.compile(objective) if args.compile else objective
        self.autocast = (torch.autocast(d.device.type, dtype=torch.bfloat16) if args.amp == "bf16"
                         else contextlib.nullcontext())

    def lr_at(self, step):
        """The learning rate of ``step`` (0-based), computed as the scheduler computes it."""
        return self.lr * lr_factor(self.args, step, self.total_steps)

    def __call__(self, x, step):
        """Trains on the batch ``x`` at ``step`` (0-based); returns the loss terms."""
        with self.autocast:
            terms = self.objective(x, kl_weight(self.args, step))
        self.optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return terms


def validate_first_batch(model, x):
    """The first batch of an invocation, checked against the likelihood's support once (one host
    sync, outside autocast, DDP and compile): ``model.loss(x, validate_args=True)`` without
    gradients. Raw 0..255 bytes under the Bernoulli, say, are a ValueError that says so."""
    eps = torch.zeros(x.shape[0], model.latent_dim, device=x.device)  # draws nothing: the RNG streams stay as they were
    try:
        with torch.no_grad():
            model.loss(x, eps=eps.to(model.output_bias.dtype), validate_args=True)
    except ValueError as e:
        raise ValueError(f"the first training batch does not fit the {model.likelihood} likelihood: {e}") from e
