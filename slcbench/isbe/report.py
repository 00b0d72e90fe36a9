"""What a person sees of an ISBE run: the paper's Tables 1-4 with intervals, the conclusions, the curves.

Tables follow the paper's layout: Table 1 the backprop share of each option per network; Table 2 the
change of that share, ISBE − CE, one row per CE reduction (and ISBE reduction) and one column per
activation; Table 3 the test accuracy of each option; Table 4 its difference from CE in Table 2's
layout. Every cell carries its interval; a verdict '=' says the interval contains 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from slcbench.console import ColumnSpec, FittedTable
from slcbench.isbe.analysis import Analysis, DifferenceRow, SavingRow, comparison_label
from slcbench.isbe.config import IsbeConfig, LossKind, LossOption, Network, Variant
from slcbench.isbe.records import GroupResult
from slcbench.stats import Interval

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# What our copy of the paper reports (its tables' values are lost from our copy of the text).
PAPER_CLAIMS = (
    "paper (MNIST, GPU): every ISBE option has a lower backprop share than CE (no '+' in its Table 2), "
    "saving up to 3% of forward + backward time; accuracy equal to CE's within statistical error (Tables 3-4)"
)
CPU_NOTE = (
    "CPU timing: host clock around eager PyTorch calls. For these small networks it is dominated by the "
    "per-operation overhead of Python and the dispatcher, so it shows whether ISBE's fewer operations "
    "save time here, relative to a whole step; it cannot show what a GPU's kernels do (asynchronous "
    "launches, a loss that is a few kernels among many), nor the paper's MNIST/GPU figures."
)
VERDICT_STYLE = {"+": "red", "-": "green", "=": "", "?": "yellow"}


def fmt_interval(interval: Interval, digits: int = 2, signed: bool = False) -> str:
    """``estimate [low, high]``; ``[—]`` where the samples give no interval."""
    spec = f"{'+' if signed else ''}.{digits}f"
    if interval.low is None or interval.high is None:
        return f"{interval.estimate:{spec}} [—]"
    return f"{interval.estimate:{spec}} [{interval.low:{spec}}, {interval.high:{spec}}]"


def _level(analysis: Analysis) -> str:
    return f"{100 * analysis.confidence:g}%"


def _verdict_cell(text: str, mark: str) -> str:
    style = VERDICT_STYLE[mark]
    return f"{text} [{style}]{mark}[/]" if style else f"{text} {mark}"


def run_header(config: IsbeConfig, device: str, examples: tuple[int, int, int], steps_per_epoch: int) -> str:
    """The line printed before training: data, networks, options, seeds, steps, device."""
    train, validation, test = examples
    return (
        f"[bold]slcbench isbe[/] {config.dataset.value}: {train} train / {validation} validation / {test} test · "
        f"{len(config.variants())} network variants × {len(config.options())} options × {len(config.seeds)} seeds · "
        f"{config.epochs} epochs × {steps_per_epoch} steps of batch {config.batch_size} · Adam lr "
        f"{config.learning_rate:g} · {device}"
    )


ISBE_MORE = "--wide, or the JSON/CSV"
TIMES_PRIORITY = 10  # Table 1's times go before any share, which is the table's point


def time_table(analysis: Analysis, network: Network, *, wide: bool = False) -> FittedTable:
    """Table 1 for one network: forward, backward time and backprop share per option, per variant."""
    rows = [row for row in analysis.times if row.variant.network is network]
    variants = list(dict.fromkeys(row.variant for row in rows))
    specs = [ColumnSpec("option", justify="left", flexible=True)]
    for index, variant in enumerate(variants):
        specs += [
            ColumnSpec(f"{variant.title}\n{header}", priority=TIMES_PRIORITY + index if times else index)
            for header, times in (("fwd ms", True), ("back ms", True), ("share %", False))
        ]
    table = FittedTable(
        specs,
        wide=wide,
        more=ISBE_MORE,
        title=f"Table 1 · {network.value} ({network.description}): median ms per step and backprop share "
        f"t_back / (t_fwd + t_back) %, [{_level(analysis)} interval]",
        title_justify="left",
    )
    previous = None
    for option in dict.fromkeys(row.option for row in rows):
        cells = [option.title]
        for variant in variants:
            row = next(r for r in rows if r.variant == variant and r.option == option)
            share = fmt_interval(row.share_pct, 1)
            cells += [f"{row.forward_ms.estimate:.3f}", f"{row.backward_ms.estimate:.3f}", share]
        group = option.kind if option.kind is LossKind.ce else option.targets  # a rule between CE and each ISBE group
        if previous is not None and group != previous:
            table.add_section()
        previous = group
        table.add_row(*cells)
    return table


def _grid_table(
    title: str,
    rows: Sequence[SavingRow] | Sequence[DifferenceRow],
    cell: Callable[[Any], str],
    row_header: str = "ISBE − CE",
    wide: bool = False,
) -> FittedTable:
    """Table 2 / Table 4 layout: one row per variant and comparison, one column per activation (the first
    activations kept where the console is narrow)."""
    activations = list(dict.fromkeys(row.option.activation for row in rows))
    specs = [ColumnSpec("network", justify="left"), ColumnSpec(row_header, justify="left", flexible=True)]
    specs += [ColumnSpec(str(activation), priority=index) for index, activation in enumerate(activations)]
    table = FittedTable(specs, wide=wide, more=ISBE_MORE, title=title, title_justify="left")
    for variant in dict.fromkeys(row.variant for row in rows):
        in_variant = [row for row in rows if row.variant == variant]
        labels = [comparison_label(row.option, row.baseline) for row in in_variant]
        for index, label in enumerate(dict.fromkeys(labels)):
            by_activation = {
                row.option.activation: row for row, own in zip(in_variant, labels, strict=True) if own == label
            }
            table.add_row(
                variant.title if index == 0 else "",
                label,
                *(cell(by_activation[a]) if a in by_activation else "—" for a in activations),
            )
        table.add_section()
    return table


def saving_table(analysis: Analysis, *, wide: bool = False) -> FittedTable:
    """Table 2: change of the backprop share (points) and the forward + backward time saved, ISBE vs CE."""
    return _grid_table(
        f"Table 2 · ISBE − CE: change of backprop share, percentage points [{_level(analysis)} interval] "
        "('-' lower share, '+' higher, '=' no difference); below: forward + backward time saved, %",
        analysis.savings,
        lambda row: (
            _verdict_cell(fmt_interval(row.share_change_pts, 2, signed=True), row.verdict)
            + f"\nsaves {fmt_interval(row.saving_pct, 1, signed=True)}"
        ),
        wide=wide,
    )


def accuracy_table(analysis: Analysis, *, wide: bool = False) -> FittedTable:
    """Table 3: test accuracy per option and variant, mean over seeds [t interval]."""
    variants = list(dict.fromkeys(row.variant for row in analysis.accuracy))
    title = f"Table 3 · test accuracy %, mean over seeds [{_level(analysis)} t interval]"
    specs = [ColumnSpec("option", justify="left", flexible=True)]
    specs += [ColumnSpec(variant.title, priority=index) for index, variant in enumerate(variants)]
    table = FittedTable(specs, wide=wide, more=ISBE_MORE, title=title, title_justify="left")
    for option in dict.fromkeys(row.option for row in analysis.accuracy):
        cells = [option.title]
        for variant in variants:
            row = next(r for r in analysis.accuracy if r.variant == variant and r.option == option)
            cells.append(fmt_interval(row.accuracy_pct, 1))
        table.add_row(*cells)
    return table


def _difference_cell(row: DifferenceRow) -> str:
    return _verdict_cell(fmt_interval(row.difference_pts, 1, signed=True), row.verdict)


def difference_table(analysis: Analysis, *, wide: bool = False) -> FittedTable:
    """Table 4: test accuracy of ISBE − CE, paired by seed."""
    return _grid_table(
        "Table 4 · test accuracy, ISBE − CE, percentage points, paired by seed "
        f"[{_level(analysis)} t interval] ('+' ISBE better, '-' worse, '=' no difference)",
        analysis.differences,
        _difference_cell,
        wide=wide,
    )


def blur_table(analysis: Analysis, *, wide: bool = False) -> FittedTable:
    """The effect of blurred targets: test accuracy blurred − hard, paired by seed."""
    return _grid_table(
        "Blurred targets · ISBE test accuracy, blurred − hard targets (same activation and reduction), percentage "
        f"points, paired by seed [{_level(analysis)} t interval]",
        analysis.blur,
        _difference_cell,
        row_header="targets",
        wide=wide,
    )


def tables(analysis: Analysis, networks: Sequence[Network], *, wide: bool = False) -> list[FittedTable]:
    """Every table of a run, in the paper's order (``wide``: every column, however wide)."""
    out = [time_table(analysis, network, wide=wide) for network in networks]
    out += [table(analysis, wide=wide) for table in (saving_table, accuracy_table, difference_table)]
    if analysis.blur:
        out.append(blur_table(analysis, wide=wide))
    return out


def _counts(verdicts: Sequence[str]) -> str:
    return ", ".join(f"{verdicts.count(mark)} '{mark}'" for mark in ("-", "=", "+", "?") if mark in verdicts)


def conclusions(analysis: Analysis) -> list[str]:
    """One line per claim of the paper: what our tables say about it."""
    lines = [PAPER_CLAIMS]
    if analysis.savings:
        savings = [row.saving_pct.estimate for row in analysis.savings]
        share_verdicts = [row.verdict for row in analysis.savings]
        everywhere = "lower in every comparison" if set(share_verdicts) == {"-"} else "not lower in every comparison"
        time_verdicts = [row.time_verdict for row in analysis.savings]
        lines.append(
            f"ours, backprop share ISBE − CE: {_counts(share_verdicts)} of {len(share_verdicts)} ({everywhere}); "
            f"forward + backward time ISBE − CE: {_counts(time_verdicts)}, "
            f"time saved {min(savings):+.1f}% to {max(savings):+.1f}%"
        )
    if analysis.differences:
        lines.append(
            f"ours, test accuracy ISBE − CE: {_counts([row.verdict for row in analysis.differences])} of "
            f"{len(analysis.differences)} ('=' is no difference within the interval)"
        )
    if analysis.blur:
        lines.append(
            f"ours, blurred − hard targets: {_counts([row.verdict for row in analysis.blur])} of {len(analysis.blur)}"
        )
    return lines


_CURVE_PANELS = (
    ("CE: cross-entropy (train —, validation --)", LossKind.ce, ("train_loss", "validation_loss")),
    ("ISBE: soft scores' MSE (train —, validation --)", LossKind.isbe, ("train_loss", "validation_loss")),
    ("train accuracy %", None, ("train_accuracy",)),
    ("validation accuracy %", None, ("validation_accuracy",)),
)


# Hue by activation, lighter for mean and sum; CE in greys; blurred targets add round markers.
_REDUCTION_LIGHTEN = {"none": 0.0, "mean": 0.35, "sum": 0.6}


def _option_style(options: Sequence[LossOption]) -> dict[str, dict[str, Any]]:
    from matplotlib.colors import to_rgb

    styles: dict[str, dict[str, Any]] = {}
    activations = list(dict.fromkeys(o.activation for o in options if o.kind is LossKind.isbe))
    for option in options:
        if option.kind is LossKind.ce:
            grey = {"none": "black", "mean": "dimgray", "sum": "darkgray"}[option.reduction.value]
            styles[option.name] = {"color": grey}
            continue
        base = np.array(to_rgb(f"C{1 + activations.index(option.activation) % 9}"))
        light = _REDUCTION_LIGHTEN[option.reduction.value]
        styles[option.name] = {"color": tuple(base + (1.0 - base) * light)}
        if option.blurred:
            styles[option.name] |= {"marker": "o", "markersize": 3}
    return styles


def curves_figure(groups: Sequence[GroupResult], network: Network, options: Sequence[LossOption]) -> Figure:
    """Learning curves of one network, mean over seeds per epoch: one row per variant, four panels.

    Uses matplotlib's object API (no pyplot, so no global backend is changed).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    variants: list[Variant] = list(dict.fromkeys(g.variant for g in groups if g.variant.network is network))
    fig = Figure(figsize=(20, 4.2 * max(1, len(variants)) + 1.0), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(max(1, len(variants)), len(_CURVE_PANELS), squeeze=False)
    styles = _option_style(options)
    for row, variant in enumerate(variants):
        in_variant = [g for g in groups if g.variant == variant]
        for ax, (title, kind, keys) in zip(axes[row], _CURVE_PANELS, strict=True):
            for option in options:
                if kind is not None and option.kind is not kind:
                    continue
                for key, style in zip(keys, ("-", "--"), strict=False):
                    values = np.mean([g.results[option.name].curves.to_dict()[key] for g in in_variant], axis=0)
                    scale = 100.0 if "accuracy" in key else 1.0
                    epochs = np.arange(1, len(values) + 1)
                    label = option.title if row == 0 and key == "train_accuracy" else None  # one legend entry each
                    ax.plot(epochs, scale * values, style, lw=1.2, label=label, **styles[option.name])
            ax.set_title(f"{variant.title}: {title}", fontsize=9)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(True, alpha=0.3)
    seeds = len({g.seed for g in groups if g.variant.network is network})
    fig.suptitle(f"{network.value} ({network.description}): learning curves, mean over {seeds} seed(s)", fontsize=11)
    fig.legend(loc="center right", fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0, 0.86, 0.96))
    return fig
