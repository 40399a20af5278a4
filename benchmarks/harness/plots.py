"""The PNG plots of a run: per (op, mode, dtype), median time against batch size, log-log, one
line per implementation, one panel per shape. Optional: without matplotlib, no plots."""

import dataclasses
import math

from .case_types import Config, TRAIN_IMPLS


def _plot_panel(ax, recs, title):
    from matplotlib.ticker import NullFormatter

    batches = sorted({r["batch"] for r in recs})
    for impl in TRAIN_IMPLS:
        pts = sorted((r["batch"], r["median_ms"]) for r in recs if r["impl"] == impl)
        if pts:
            ax.plot(*zip(*pts), marker="o", label=impl)
    ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="median ms per call", title=title)
    ax.set_xticks(batches, [str(b) for b in batches], rotation=30 if len(batches) > 4 else 0)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")


def plot(meta, directory):
    """One PNG per (op, mode, dtype): median time against batch size, log-log, one line per
    implementation, one panel per shape. Returns the paths written."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plots (pip install matplotlib, or pass --no-plots)")
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {}
    for r in meta["records"]:
        if r["status"] == "ok":
            fam = dataclasses.replace(Config.of(r), batch=0)
            figures.setdefault((r["op"], r["mode"], r["dtype"]), {}).setdefault(fam, []).append(r)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for (op, mode, dtype), fams in figures.items():
        cols = min(3, len(fams))
        rows = math.ceil(len(fams) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(max(6.4, 4.5 * cols), 4.2 * rows), squeeze=False)
        for ax, (fam, recs) in zip(axes.flat, fams.items()):
            _plot_panel(ax, recs, fam.label(batch=False) or op)
        for ax in list(axes.flat)[len(fams):]:
            ax.set_visible(False)
        where = meta["device_name"] if meta["triton_kernels_timed"] else "CPU, Triton kernels NOT timed"
        fig.suptitle(f"{op} {mode} {dtype} ({where})", fontsize=10)
        fig.tight_layout()
        path = directory / f"{op}-{mode.replace('+', '_')}-{dtype}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
