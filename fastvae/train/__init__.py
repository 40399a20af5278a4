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
(compilation and warm-up), evaluation and checkpointing; at the end the command prints where
its wall time went. The configuration in ``checkpoint.pt`` and ``summary.json`` is resolved
(every setting with its value; ``fastvae.models.load`` rebuilds the model from it).

``--data PATH`` trains on your own ``.npy``/``.npz`` array or folder of images
(``fastvae.data.load_files``; ``--held-out``, ``--resize``).

``--likelihood`` (bernoulli, continuous-bernoulli, gaussian with ``--logscale``), ``--data mnist
--grey`` (grey levels, uniformly dequantized; the test NLL also in bits/dim) and ``--objective``
(elbo, iwae, dreg with ``--samples K``) choose the model and the objective.

Ctrl-C during training stops at the next step boundary (under torchrun, one all ranks agree
on), checkpoints there, prints the command that continues (the same one plus ``--resume``) and
exits with status 130.

The package, one module per concern (a call goes cli -> runner -> loop -> step):

- ``cli``: ``main``, the command and its exit statuses;
- ``args``: the command line (``build_parser``) and the run configuration; ``config``: that
  configuration resolved;
- ``runner``: ``run``, one run from set-up to ``summary.json``;
- ``loop``: the epoch loop (timing, logging, checkpoints, per-epoch records);
- ``step``: the model, the objective, Adam, the learning-rate and KL schedules, one step;
- ``checkpoint``: ``checkpoint.pt``, resume checks, RNG state, ``metrics.jsonl``, atomic writes;
- ``dataset``: the run's data set on the device; ``targets``: its batches as the likelihood gets
  them (bytes, floats, or dequantized grey levels) and bits/dim; ``evaluation``: ELBO and NLL of a split;
- ``distributed``: ranks and the process group; ``plots``: the PNG files;
- ``interrupt``: Ctrl-C, and where the ranks agree to stop; ``walltime``: where the time went.
"""

from .. import _shadow  # noqa: F401  (first: it says so when a folder named fastvae hides the package)
from .args import build_parser
from .checkpoint import CHECKPOINT, save_atomic, write_json_atomic
from .cli import main
from .dataset import load_data
from .distributed import Dist
from .evaluation import evaluate_split
from .loop import Progress, TrainingDiverged
from .plots import write_plots
from .runner import run
from .step import build_model, kl_weight, lr_factor, Objective, scaled_lr

__all__ = [
    "CHECKPOINT",
    "Dist",
    "Objective",
    "Progress",
    "TrainingDiverged",
    "build_model",
    "build_parser",
    "evaluate_split",
    "kl_weight",
    "load_data",
    "lr_factor",
    "main",
    "run",
    "save_atomic",
    "scaled_lr",
    "write_json_atomic",
    "write_plots",
]
