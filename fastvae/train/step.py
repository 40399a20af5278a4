"""What one training step computes: the model, the objective (under DistributedDataParallel and
``torch.compile`` when asked), Adam with the scaled learning rate and its schedule, and the KL
weight's warm-up."""

import contextlib
import math

import torch

from ..models import ConvVAE, MLPVAE


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


def initial_model(args, ds, device):
    """The model on ``device`` with the same initial weights on every rank; with
    --output-bias-init the decoder's output bias starts at the logit of the training pixel means."""
    torch.manual_seed(args.seed)  # identical initial weights on every rank
    model = build_model(args, ds.shape).to(device)
    if args.output_bias_init:  # summed as float64 on the fly: no float copy of the data set
        means = ds.train.sum(0, dtype=torch.float64) / (ds.train.shape[0] * (255.0 if ds.dynamic else 1.0))
        model.init_output_bias(means)
    return model


class Objective(torch.nn.Module):
    """The model's loss as a module, so DistributedDataParallel (which hooks ``forward``) and
    ``torch.compile`` see the whole step."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, beta):
        return self.model.loss(x, beta=beta, return_terms=True)


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
        objective = Objective(model)
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


def check_targets(x):
    """The first batch of an invocation: targets must be what the Bernoulli likelihood expects,
    uint8 0/1 (one host sync, once). A local stand-in for fastvae.elbo_loss(validate_args=True)."""
    if x.dtype != torch.uint8:
        raise TypeError(f"training batches must be uint8 0/1, got dtype {x.dtype}")
    top = int(x.max()) if x.numel() else 0
    if top > 1:
        raise ValueError(f"the first training batch holds pixel values up to {top}, but the Bernoulli "
                         f"likelihood takes 0/1 targets: grey levels must be binarized first")
