"""The comparison's ranking as plain text, for the terminal at the end of `ganvae compare`: the
report's ranking table cut to the columns that fit 100 characters, with the real-data floor
beneath (what the real test images score against the rest of the real data: no model can
beat it by more than noise)."""

from __future__ import annotations

from .html import aggregate

# (metric, header, decimals): the columns the terminal shows when some row has them
TERMINAL_COLUMNS = [("fd", "FD", 2), ("precision", "prec", 3), ("recall", "recall", 3),
                    ("mode_coverage", "classes", 0), ("nll_bpd", "bits/dim", 3), ("sharpness", "sharp", 2)]


def _cell(mean: float, std: float, n: int, decimals: int) -> str:
    text = f"{mean:.{decimals}f}"
    return text + (f" ±{std:.{decimals}f}" if n > 1 and decimals else "")


def ranking_text(results: dict) -> str:
    """results.json's content -> the ranking, best FD first (as the report orders it), one
    model a line, the floor last; models that diverged are listed after the ranked ones."""
    agg = aggregate(results["rows"], "final")
    floor = results.get("floor", {}).get("metrics", {})
    cols = [(k, h, d) for k, h, d in TERMINAL_COLUMNS if any(k in a for a in agg.values())]
    order = sorted(agg, key=lambda m: agg[m]["fd"][0]) if all("fd" in a for a in agg.values()) else list(agg)
    table = [["#", "model", *(h for _, h, _ in cols)]]
    for rank, m in enumerate(order, 1):
        table.append([str(rank), m, *(_cell(*agg[m][k], d) if k in agg[m] else "–" for k, _, d in cols)])
    if floor:
        table.append(["", "real data (floor)", *(f"{floor[k]:.{d}f}" if k in floor else "" for k, _, d in cols)])
    failed = sorted({r["model"] for r in results["rows"] if r.get("status") != "ok"} - set(agg))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
             for row in table]
    lines += [f"–  {m}: diverged (no scores)" for m in failed]
    split = results.get("splits", {}).get("test_images")
    head = "ranking by FD in the evaluator's features (lower is better)" + (
        f", on {split:,} test images" if split else "") + ":"
    return "\n".join([head, *lines])
