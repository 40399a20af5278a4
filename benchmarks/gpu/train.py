"""The GPU check's training stage (``stages.train``): a whole MLP VAE step at large batch, fused vs eager loss,
and about a minute of the training command."""

import json
import subprocess
import sys

import torch

from fastvae.models import MLPVAE

from ..harness import timing

B = 65536


def _step_fn(model, loss, x):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(_=None):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            value = loss(x)
        value.backward()
        opt.step()
    return step


def train_step_cases():
    """One Adam step of MLPVAE 784-400-40 under bf16 autocast at B = 65536: the fused model
    (``fastvae``), the same model with the eager (reference) loss, and that compiled."""
    dev = torch.device("cuda")
    timer = timing.CudaTimer(quick=False)
    x = torch.randint(0, 2, (B, 1, 28, 28), dtype=torch.uint8, device=dev)
    out = []
    for impl in ("eager", "compile", "fastvae"):
        torch.manual_seed(0)
        model = MLPVAE((1, 28, 28), hidden=(400,), latent_dim=40, fused=impl == "fastvae").to(dev)
        loss = torch.compile(model.loss, dynamic=False) if impl == "compile" else model.loss
        step = _step_fn(model, loss, x)
        try:
            spread, peak, _ = timing.measure(timer, None, step)
            ms, iqr, status, error = spread.median, [spread.q1, spread.q3], "ok", None
        except Exception as e:  # reported in the summary, not fatal
            ms = iqr = peak = None
            status, error = "error", f"{type(e).__name__}: {str(e)[:300]}"
        out.append(dict(op="train_step", B=B, D=784, latent=40, logits_dtype="bfloat16 (autocast)",
                        target_dtype="uint8", impl=impl, ms=ms, ms_iqr=iqr, floor_bytes=None,
                        pct_of_copy_bandwidth=None,
                        peak_mem_mb=None if peak is None else round(peak / 2**20, 1), status=status, error=error,
                        checked_against=None))
        print(f"   train_step {impl}: {ms if ms is None else round(ms, 3)} ms", flush=True)
        del model, step
        torch.cuda.empty_cache()
    return out


def train_run(out, step_ms, seconds=60.0):
    """``python -m fastvae.train`` at B = 65536, bf16 autocast, latent 64, on the generated shapes
    (10 steps an epoch), enough epochs for about ``seconds`` of training; its summary."""
    epochs = max(2, min(200, int(seconds / max((step_ms or 50.0) / 1e3, 1e-3) / 10)))
    cmd = [sys.executable, "-m", "fastvae.train", "--data", "shapes", "--num-train", str(10 * B), "--num-test", "8192",
           "--batch-size", str(B), "--amp", "bf16", "--latent-dim", "64", "--hidden", "400", "--epochs", str(epochs),
           "--eval-samples", "16", "--no-progress", "--no-plots", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"fastvae.train exit {proc.returncode} (see train/train.log)")
    s = json.loads((out / "summary.json").read_text())
    return dict(command=" ".join(cmd[1:]), epochs=epochs, examples_per_s=s.get("examples_per_s"),
                test_neg_elbo=s.get("test_neg_elbo"), test_nll=s.get("test_nll"))
