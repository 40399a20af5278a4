"""The body of ``bash benchmarks/gpu_check.sh [--headline | --objectives] [OUTDIR]``: validate
fastvae on a CUDA GPU and measure it, in stages, each printed as it runs and timed:

1. ``tests``: the whole test suite on CUDA (the kernels compiled for real), in parallel
   workers when pytest-xdist is there; JUnit XML and the log in OUTDIR.
2. ``headline``: ELBOLoss forward+backward (``reparameterize_kl`` then ``elbo_loss``) at
   B = 65536, D = 784, latent 64, float32 and bfloat16 logits, uint8 and float targets, and
   ``reparameterize_kl`` forward+backward at B = 65536, latent 64: eager vs ``torch.compile`` vs
   fastvae, checked equal first, with peak memory and the copy bandwidth of the same run (the
   README's headline: ``HEADLINE`` in ``harness/cases.py``, the list the benchmark's report uses).
3. ``small``: the small-batch sweep, ELBOLoss at B = 64 ... 8192, and the host time per step
   at B = 4 with fastvae's launches stubbed (``harness/overhead.py``).
4. ``sass``: the machine-code report of the real device (``benchmarks/sass_report.py``).
5. ``train``: a whole MLP VAE training step (784-400-40, bf16 autocast, B = 65536) with the fused
   loss and with the eager loss, then about a minute of ``python -m fastvae.train`` at B = 65536
   (bf16 autocast, latent 64) for its examples/s.
``--headline`` runs stage 2 alone. ``--objectives`` runs, alone (it is not part of the default
run, which must stay under 5 minutes), the ``objectives`` stage: the continuous Bernoulli and
Gaussian likelihoods forward+backward at B = 65536 (D = 784, and 3x64x64 images), and the
K-sample objectives (IWAE and DReG, K = 5 and 50) at B = 4096, D = 784, and scVI's loss and
training step at the census shape (B = 1024, 8000 genes): eager vs
``torch.compile`` vs fastvae, time and peak memory. Writes ``summary.json`` (keys: device, date, torch, triton,
copy_bandwidth_gbs, cases; a case has op, B, D, latent, logits_dtype, target_dtype, impl, ms,
floor_bytes, pct_of_copy_bandwidth (fastvae only), peak_mem_mb, and image and K where they
apply), ``summary.md`` and plots into
OUTDIR (default ``benchmarks/results/<gpu>-<date>/``). Exit status 2 without a CUDA GPU, 1 when
a stage failed (the others still ran), else 0.
"""

import argparse
import datetime
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from .. import RESULTS, ROOT


def _stage(name, fn, log):
    t0 = time.perf_counter()
    print(f"== {name} ...", flush=True)
    try:
        out = fn()
        ok = True
    except Exception as e:  # a broken stage is reported; the others still run
        out, ok = f"{type(e).__name__}: {e}", False
    log.append(dict(stage=name, ok=ok, seconds=round(time.perf_counter() - t0, 1),
                    note=None if ok else str(out)[:2000]))
    print(f"== {name}: {'ok' if ok else 'FAILED: ' + str(out)[:500]} ({log[-1]['seconds']} s)", flush=True)
    return out if ok else None


def run_tests(out):
    try:
        import xdist  # noqa: F401
        workers = ["-n", str(min(16, os.cpu_count() or 1))]
    except ImportError:
        workers = []
    cmd = [sys.executable, "-m", "pytest", "-q", *workers, f"--junitxml={out / 'tests.xml'}", "-p", "no:cacheprovider"]
    with open(out / "tests.log", "w") as log:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, timeout=900)
    tail = (out / "tests.log").read_text().strip().splitlines()[-1:]
    if proc.returncode != 0:
        raise RuntimeError(f"pytest exit {proc.returncode}: {tail[0] if tail else ''} (see tests.log)")
    return tail[0] if tail else ""


def main(argv=None):
    p = argparse.ArgumentParser(prog="bash benchmarks/gpu_check.sh", description=__doc__.split("\n\n")[0])
    only = p.add_mutually_exclusive_group()
    only.add_argument("--headline", action="store_true", help="only the headline cases and the copy bandwidth")
    only.add_argument("--objectives", action="store_true",
                      help="only the continuous Bernoulli, Gaussian, IWAE and DReG cases and the copy bandwidth")
    p.add_argument("outdir", nargs="?", type=Path, help="default: benchmarks/results/<gpu>-<date>/")
    a = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU on this machine; nothing was run (exit status 2)", file=sys.stderr)
        return 2
    from ..harness.metadata import slug
    from . import stages

    name = torch.cuda.get_device_name(0)
    date = datetime.date.today().isoformat()
    out = a.outdir or RESULTS / f"{slug(name, empty='gpu')}-{date}"
    out.mkdir(parents=True, exist_ok=True)
    summary = stages.header(name, date)
    log = summary["stages"]
    t0 = time.perf_counter()
    if a.objectives:
        _stage("objectives", lambda: stages.objectives(summary), log)
    else:
        if not a.headline:
            summary["tests"] = _stage("tests", lambda: run_tests(out), log)
        _stage("headline", lambda: stages.headline(summary), log)
        if not a.headline:
            _stage("small", lambda: stages.small(summary), log)
            summary["sass"] = _stage("sass", lambda: stages.sass(out), log)
            _stage("train", lambda: stages.train(summary, out), log)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    stages.write(summary, out)
    print(f"wrote {out / 'summary.json'} and {out / 'summary.md'} ({summary['seconds']} s in all)")
    return 0 if all(s["ok"] for s in log) else 1

