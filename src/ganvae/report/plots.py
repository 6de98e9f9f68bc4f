"""The report's figures (matplotlib, Agg), as PNG data URIs for report.html.

Legends sit outside the axes, to the right, and name each model by a short label: a compare
variant's spec can be long (`dcgan:train.init_from=/a/long/run/dir:freeze_d=1`), and a legend
inside the axes then covers the bars or curves it explains.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..files import read_jsonl
from .html import fig_data, split_notes, used_sizes

LABEL_MAX = 44   # characters of a legend label
VALUE_MAX = 14   # ... and of one setting's value in it


def short_label(model: str, limit: int = LABEL_MAX) -> str:
    """A model spec for a legend: a path value by its last part (`init_from=.../0003-src` ->
    `init_from=0003-src`), dotted keys by their last part (`train.init_from` -> `init_from`),
    each value cut to VALUE_MAX characters (so the settings after a long one stay visible: they
    are what tells two variants apart), then the whole to `limit`; cuts end in an ellipsis."""
    def cut(text: str, n: int) -> str:
        return text if len(text) <= n else text[:n - 1] + "…"

    name, *over = model.split(":")
    parts = [name]
    for kv in over:
        key, eq, value = kv.partition("=")
        key = key.rsplit(".", 1)[-1]
        if "/" in value:
            value = value.rstrip("/").rsplit("/", 1)[-1]
        parts.append(f"{key}{eq}{cut(value, VALUE_MAX)}")
    return cut(":".join(parts), limit)


def outside_legend(fig, ax, **kw) -> None:
    """The legend of `ax` to the right of the axes (the figure uses the constrained layout,
    which makes room for it), one column unless there are many entries."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8, ncol=1 if len(labels) <= 12 else 2, **kw)


def modes_figure(real: list[float], hists: dict[str, list[float]], classes: list[str], colours: dict):
    """Mode coverage: the samples' class histogram of each model (seed 0) beside the real test
    split's, as the evaluator reads them. -> the matplotlib figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 3.4), layout="constrained")
    width = 0.8 / (len(hists) + 1)
    xs = np.arange(len(real))
    ax.bar(xs, real, width, color="lightgrey", edgecolor="grey", label="real test, as the evaluator reads it")
    for i, (m, h) in enumerate(hists.items(), start=1):
        ax.bar(xs + i * width, h, width, color=colours.get(m), label=short_label(m))
    ax.set_xticks(xs + 0.4 - width / 2, classes, rotation=20, fontsize=8)
    ax.set_ylabel("share of samples")
    outside_legend(fig, ax)
    return fig


def plots(results: dict, run_dirs: dict[str, list[Path]], curves: dict[str, list[dict]]) -> dict[str, str]:
    """The report's figures as PNG data URIs: {name: uri}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = {}
    colours = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(run_dirs)}
    # FD against time and against images seen
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained")
    for m, curve in curves.items():
        if not curve:
            continue
        axes[0].plot([r["train_seconds"] for r in curve], [r["fd"] for r in curve], "o-", color=colours[m],
                     label=short_label(m))
        axes[1].plot([r["images_seen"] for r in curve], [r["fd"] for r in curve], "o-", color=colours[m],
                     label=short_label(m))
    floor = results["floor"]["metrics"]["fd"]
    for ax, xl in zip(axes, ("training seconds", "images seen")):
        ax.axhline(floor, color="grey", ls="--", lw=1, label="real-data floor (test)")
        ax.set_xlabel(xl)
        ax.set_ylabel(f"FD ({split_notes(results)['curve']}), {used_sizes(results)['curve_n']} samples")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    outside_legend(fig, axes[1])
    plots["fd_curves"] = fig_data(fig)
    # training losses, one panel per model (seed 0)
    n = len(run_dirs)
    cols = min(3, n)
    fig, axes = plt.subplots(math.ceil(n / cols), cols, figsize=(4.2 * cols, 2.8 * math.ceil(n / cols)), squeeze=False)
    for ax, (m, dirs) in zip(axes.flat, run_dirs.items()):
        rows = read_jsonl(dirs[0] / "metrics.jsonl")
        keys = sorted({k for r in rows for k in r if k.startswith("loss/")})
        for k in keys:
            pts = [(r["step"], r[k]) for r in rows if k in r]
            if pts:
                ax.plot(*zip(*pts), label=k.split("/", 1)[1], lw=1)
        ax.set_title(short_label(m), fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        if any(v > 0 for k in keys for r in rows if k in r for v in [r[k]]) and \
                all(r[k] > 0 for k in keys for r in rows if k in r):
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    plots["losses"] = fig_data(fig)
    # ADA: the augmentation probability p(t) of every run that adapted one
    ada = {m: [(r["step"], r["aug/p"]) for r in read_jsonl(dirs[0] / "metrics.jsonl") if "aug/p" in r]
           for m, dirs in run_dirs.items()}
    ada = {m: pts for m, pts in ada.items() if pts}
    if ada:
        fig, ax = plt.subplots(figsize=(7, 3), layout="constrained")
        for m, pts in ada.items():
            ax.plot(*zip(*pts), color=colours.get(m), label=short_label(m))
        ax.set_xlabel("step")
        ax.set_ylabel("ADA's augmentation probability p")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        outside_legend(fig, ax)
        plots["ada"] = fig_data(fig)
    # D overfitting: its mean logit on training images minus on held-out real ones, per curve
    # point, for the models whose curves recorded it (GANs, VAE-GAN)
    gaps = {m: [(r["step"], r["d_real_train"] - r["d_real_val"]) for r in curve if "d_real_train" in r]
            for m, curve in curves.items()}
    gaps = {m: pts for m, pts in gaps.items() if pts}
    if gaps:
        fig, ax = plt.subplots(figsize=(7, 3), layout="constrained")
        for m, pts in gaps.items():
            ax.plot(*zip(*pts), "o-", ms=3, color=colours.get(m), label=short_label(m))
        ax.axhline(0, color="grey", lw=1)
        ax.set_xlabel("step")
        ax.set_ylabel("D logit: train − held-out")
        ax.grid(alpha=0.3)
        outside_legend(fig, ax)
        plots["d_gap"] = fig_data(fig)
    # mode coverage: class histograms of the samples against the real one
    real = results["floor"].get("class_hist")
    hists = results["_hist"]
    if real and hists:
        classes = results["floor"]["classes"] or [str(i) for i in range(len(real))]
        plots["modes"] = fig_data(modes_figure(real, hists, classes, colours))
    return plots
