"""`plot_lines`: the one line-plot helper of the command-line tools (`seqvcr-diagnose`, `seqvcr-probe`).

Draws on an Agg canvas of its own rather than through pyplot, so no display or global backend state is involved
(headless servers, notebooks and tests alike).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter


def plot_lines(
    series: Mapping[str, Sequence[float]],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    path: Path,
    ylim: tuple[float, float] | None = None,
    x: Sequence[float] | None = None,
    log_x: bool = False,
    log_y: bool = False,
    styles: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """One marked line per label, over ``x`` (default: 0, 1, 2, … — layers or answer positions).

    ``styles`` gives per-label keyword arguments for ``Axes.plot`` (e.g. a dashed threshold line with
    ``{"linestyle": "--", "marker": None}``). On a log axis, values <= 0 are not drawn (matplotlib masks them).
    """
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for label, values in series.items():
        xs = range(len(values)) if x is None else x
        ax.plot(xs, values, **{"marker": "o", "label": label, **(styles or {}).get(label, {})})
    if log_x:
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(ScalarFormatter())  # 8, 16, 32 rather than 2^3, 2^4, 2^5
    if log_y:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, ylim=ylim)
    if not log_x:
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3, which="both" if log_y else "major")
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=150)
