"""The measuring stages of the GPU check (``check.py``) and its summary (``summary.json``,
``summary.md``, plots). The cases run through the benchmark's own machinery (the harness's
``cases``, ``measure``, ``timing``): checked against eager PyTorch, then timed with CUDA events."""

import json
import platform
import subprocess
import sys

import torch

from .. import ROOT
from ..harness import measure, overhead, timing
from ..harness.case_types import Config
from ..harness.cases import HEADLINE

OPS = {"elbo_loss": "elbo_loss_fwd_bwd", "reparameterize_kl": "reparameterize_kl_fwd_bwd",
       "continuous_bernoulli_ll": "continuous_bernoulli_ll_fwd_bwd", "gaussian_ll": "gaussian_ll_fwd_bwd",
       "iwae_loss": "iwae_loss_fwd_bwd", "dreg_loss": "dreg_loss_fwd_bwd", "zinb_ll": "zinb_ll_fwd_bwd",
       "count_train_step": "count_train_step"}
# the other likelihoods at the sizes of their issue, and the K-sample objectives
OBJECTIVES = ([Config(op, 65536, "float32", **fam) for op in ("continuous_bernoulli_ll", "gaussian_ll")
               for fam in (dict(dim=784, targets="float"), dict(image="3x64x64", targets="float"))]
              + [Config(op, 4096, "float32", samples=K, dim=784, latent=64, targets="uint8")
                 for op in ("iwae_loss", "dreg_loss") for K in (5, 50)]
              # scVI's loss at the CELLxGENE census model's shape, and its whole training step
              + [Config("zinb_ll", 1024, "float32", dim=8000, targets="int32"),
                 Config("count_train_step", 1024, "float32", dim=8000, targets="int32", model="census")])
SMALL = [Config("elbo_loss", B, "float32", dim=784, latent=64, targets="uint8") for B in (64, 256, 1024, 4096, 8192)]


def header(name, date):
    import triton

    return dict(device=name, date=date, torch=torch.__version__, triton=triton.__version__,
                python=platform.python_version(), copy_bandwidth_gbs=None, cases=[], stages=[])


def _case(rec, op=None):
    fv = rec["impl"] == "fastvae" and rec["fraction_of_copy_bandwidth"] is not None
    return dict(op=op or OPS.get(rec["op"], rec["op"]), B=rec["batch"], D=rec["dim"], latent=rec["latent"],
                image=rec.get("image"), K=rec.get("samples"),
                logits_dtype=rec["dtype"], target_dtype=rec["targets"], impl=rec["impl"], ms=rec["median_ms"],
                ms_iqr=None if rec["q1_ms"] is None else [rec["q1_ms"], rec["q3_ms"]], floor_bytes=rec["least_bytes"],
                pct_of_copy_bandwidth=round(100 * rec["fraction_of_copy_bandwidth"], 1) if fv else None,
                peak_mem_mb=None if rec["peak_memory_bytes"] is None else round(rec["peak_memory_bytes"] / 2**20, 1),
                status=rec["status"], error=rec["error"], checked_against=rec["checked_against"])


def _run_configs(summary, configs):
    dev = torch.device("cuda")
    timer = timing.CudaTimer(quick=False)
    with timing.settings(dev, None):
        if summary["copy_bandwidth_gbs"] is None:
            summary["copy_bandwidth_gbs"] = round(timing.copy_bandwidth(dev, timer, False)["gb_per_s"], 1)
            print(f"   copy bandwidth {summary['copy_bandwidth_gbs']} GB/s", flush=True)
        for c in configs:
            results = measure.bench_config(c, dev, timer)
            recs = [r for r in measure.make_records(c, results, summary["copy_bandwidth_gbs"])
                    if r["mode"] in ("fwd+bwd", "train")]
            summary["cases"] += [_case(r) for r in recs]
            times = ", ".join(f"{r['impl']} {r['median_ms']:.3f} ms" if r["median_ms"] else f"{r['impl']} {r['status']}"
                              for r in recs)
            print(f"   {c.op} {c.dtype} {c.label()}: {times}", flush=True)


def headline(summary):
    """The README's headline, the harness's ``HEADLINE`` (all forward+backward)."""
    _run_configs(summary, [c for c, mode in HEADLINE if mode == "fwd+bwd"])


def objectives(summary):
    _run_configs(summary, OBJECTIVES)


def small(summary):
    _run_configs(summary, SMALL)
    summary["overhead"] = overhead.record(torch.device("cuda"), overhead.measure(torch.device("cuda")))
    for line in overhead.lines(summary["overhead"]):
        print("   " + line, flush=True)


def sass(out):
    path = out / "sass.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sass_report.py"), "--json", str(path)],
                          capture_output=True, text=True, timeout=600)
    (out / "sass.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"sass_report exit {proc.returncode} (see sass.log)")
    return json.loads(path.read_text())


def train(summary, out):
    from . import train as train_gpu

    summary["cases"] += train_gpu.train_step_cases()
    step_ms = next((c["ms"] for c in summary["cases"] if c["op"] == "train_step" and c["impl"] == "fastvae"), None)
    summary["train_run"] = train_gpu.train_run(out / "train", step_ms)


def _md(summary):
    lines = [f"# fastvae GPU check: {summary['device']}, {summary['date']}", "",
             f"torch {summary['torch']}, triton {summary['triton']}; device-to-device copy "
             f"{summary['copy_bandwidth_gbs']} GB/s (bytes read + written); {summary.get('seconds')} s in all.", "",
             "| stage | ok | seconds | note |", "|---|---|---|---|"]
    lines += [f"| {s['stage']} | {'yes' if s['ok'] else 'NO'} | {s['seconds']} | {s['note'] or ''} |"
              for s in summary["stages"]]
    lines += ["", "| op | B | K | D | latent | logits | targets | impl | ms (interquartile range) | % of copy bw | "
              "peak MB |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in summary["cases"]:
        ms = "-" if c["ms"] is None else f"{c['ms']:.4g}"
        if c["ms"] is not None and c.get("ms_iqr"):
            ms += f" ({c['ms_iqr'][0]:.4g}-{c['ms_iqr'][1]:.4g})"
        lines.append(f"| {c['op']} | {c['B']} | {c.get('K') or '-'} | {c['D'] or c.get('image') or '-'} | "
                     f"{c['latent'] or '-'} | {c['logits_dtype']} | "
                     f"{c['target_dtype'] or '-'} | {c['impl']} | {ms} | {c['pct_of_copy_bandwidth'] or '-'} | "
                     f"{c['peak_mem_mb'] or '-'} |")
    if summary.get("overhead"):
        lines += ["", "Host time per step at B = 4 (launches stubbed): "
                  + ", ".join(f"{k} {v} us" for k, v in summary["overhead"]["host_us"].items())]
    if summary.get("train_run"):
        lines += ["", f"Training command: {summary['train_run']}"]
    return "\n".join(lines) + "\n"


def _plot(summary, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    rows = [c for c in summary["cases"] if c["op"] == "elbo_loss_fwd_bwd" and c["ms"] and c["logits_dtype"] == "float32"
            and c["target_dtype"] == "uint8"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for impl in ("eager", "compile", "fastvae"):
        pts = sorted((c["B"], c["ms"]) for c in rows if c["impl"] == impl)
        if pts:
            ax.loglog(*zip(*pts), marker="o", label=impl)
    ax.set(xlabel="batch size B", ylabel="ms per step (fwd+bwd)",
           title=f"ELBOLoss fwd+bwd, D=784, fp32 logits, uint8 targets\n{summary['device']}, {summary['date']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "elbo_loss.png", dpi=120)
    plt.close(fig)


def write(summary, out):
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out / "summary.md").write_text(_md(summary))
    _plot(summary, out)
