#!/usr/bin/env bash
# Validate fastvae on a CUDA GPU, in one command:
#
#     bash benchmarks/gpu_check.sh [--headline | --objectives] [OUTDIR]
#
# For a machine with a CUDA GPU and no network where torch, triton, numpy, pytest and
# matplotlib are installed (pytest-xdist is used when present). Installs this checkout without
# dependencies, then runs benchmarks/gpu_check.py: the test suite on CUDA, the headline
# benchmark (eager vs torch.compile vs fastvae, copy bandwidth, peak memory), the small-batch
# sweep and host overhead, the machine-code report, and a training-step comparison plus about a
# minute of the training command. --headline: the headline cases and the copy bandwidth only.
# --objectives: only the continuous Bernoulli, Gaussian, IWAE, DReG and count (scVI) cases (a separate run).
# Writes summary.json, summary.md and plots into OUTDIR (default
# benchmarks/results/<gpu>-<date>/). Exit status: 2 without a CUDA GPU, 1 when a stage failed.
set -uo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "gpu_check: no CUDA GPU on this machine (torch.cuda.is_available() is False, or torch is missing); nothing was run" >&2
    exit 2
fi
echo "== install: pip install --no-deps --no-build-isolation -e ."
python3 -m pip install -q --no-deps --no-build-isolation -e . || { echo "gpu_check: install failed" >&2; exit 1; }
exec python3 benchmarks/gpu_check.py "$@"
