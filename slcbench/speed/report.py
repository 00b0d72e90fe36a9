"""What a person sees of a speed run: the header line, the Table III table, notes, and the Fig. 1 plot."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from slcbench.class_counts import format_class_count
from slcbench.console import ColumnSpec, FittedTable, shown
from slcbench.paper import PAPER_GPU, PAPER_TABLE_III_SECONDS
from slcbench.results import Head, SpeedRow, Status, Timing
from slcbench.speed.config import SpeedConfig
from slcbench.speed.nvml import CLOCK_MOVE_TOLERANCE_PCT, NOT_THROTTLING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# IQR above this share of the median is flagged: graph replay times the GPU's own spread; launch-bound
# eager and CPU timings are judged more leniently (torch.utils.benchmark's Timer warns at 10%).
SPREAD_TARGET_PCT = {Timing.graph: 1.0, Timing.eager: 5.0}


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _fmt_speedup(value: float | None) -> str:
    return "—" if value is None else f"×{value:.2f}"


# A speedup interval wider than this (half-width, % of the estimate) is flagged: the noise leaves the
# speedup undecided at the precision that Table III quotes.
SPEEDUP_TOLERANCE_PCT = 2.0


def _wide_speedup(row: SpeedRow) -> bool:
    width = row.speedup_half_width_pct
    return row.speedup_ci is not None and width is not None and width > SPEEDUP_TOLERANCE_PCT


def _speedup_ci_cell(row: SpeedRow) -> str:
    if row.speedup_ci is None:
        return "—" if row.speedup is None or row.speedup == 1.0 else "n/a"
    low, high = row.speedup_ci
    text = f"{low:.2f}–{high:.2f}"
    return f"[yellow]{text}[/]" if _wide_speedup(row) else text


def _over_spread_target(row: SpeedRow) -> bool:
    return row.iqr_pct is not None and row.iqr_pct > SPREAD_TARGET_PCT[row.timing]


def sampling_summary(config: SpeedConfig) -> str:
    """How each row is sampled and warmed up, in one phrase for the run's header line."""
    protocol, plan = config.protocol, config.warmup_plan
    samples = f"{protocol.batches} timed batches"
    if config.min_sample_ms:
        samples = f"{protocol.batches} samples of ≥ {config.min_sample_ms:g} ms (batches unrolled in the graph)"
    paired = f"other rows: ≥ {protocol.blocks} A-B-B-A blocks against k=1"
    if protocol.ci_target_pct is not None:
        paired += f", more until the speedup is within ±{protocol.ci_target_pct:g}% (≤ {protocol.row_budget_s:g} s)"
    warmup = [f"≥ {plan.calls} warm-up calls"] if plan.calls else []
    if plan.min_s:
        warmup.append(f"≥ {plan.min_s:g} s")
    if plan.settle_pct is not None:
        warmup.append(f"until steady within {plan.settle_pct:g}% (≤ {plan.max_s:g} s)")
    return f"k=1: {samples}; {paired} ({', '.join(warmup) or 'warm-up: the untimed first call of each row'})"


def gpu_note(state: dict[str, Any]) -> str:
    """What NVML will record of this run, in one phrase for the header (said once, not per row)."""
    if not state.get("nvml"):
        return f"no NVML ({shown(state.get('unavailable'))}): clock, throttle and energy fields are null"
    locked = {True: "clocks locked", False: "clocks not locked", None: "clock lock unknown"}[state.get("clocks_locked")]
    energy = "energy counter" if state.get("energy_counter") else "no energy counter: energy fields are null"
    others = state.get("other_processes") or []
    warning = f" · [bold yellow]{len(others)} other process(es) on the GPU[/]" if others else ""
    return f"NVML: {locked}, {energy}{warning}"


def run_header(config: SpeedConfig, environment: dict[str, Any], gpu_state: dict[str, Any] | None = None) -> str:
    """The line printed before a sweep: device, precision, timing, protocol (and whether it is the paper's),
    and what NVML will record (``gpu_state``)."""
    protocol = config.protocol
    label = (
        "paper protocol"
        if protocol.name == "paper"
        else f"{protocol.name} protocol — NOT the paper's (batch 32, 100 batches on a GPU)"
    )
    threads = environment.get("torch_threads")
    return (
        f"[bold]slcbench speed[/] on {shown(environment['device_name'])} · {config.precision.value} · "
        f"{config.timing.value} timing · batch {protocol.batch_size} · {threads} CPU thread(s) · "
        f"{sampling_summary(config)} · {label}" + (f" · {gpu_note(gpu_state)}" if gpu_state is not None else "")
    )


def placement_header(config: SpeedConfig, placement: str) -> str:
    """The line printed before a sweep measured outside this process: where, and the settings of ``run_header``."""
    threads = config.protocol.threads if config.protocol.threads is not None else "torch's default"
    return run_header(config, {"device_name": f"{config.device.split(':')[0]}: {placement}", "torch_threads": threads})


def row_label(row: SpeedRow) -> str:
    return f"{row.arch} k={format_class_count(row.classes)} {row.head.value}"


def gpu_notes(rows: Sequence[SpeedRow], gpu_state: dict[str, Any], *, energy_asked: bool) -> list[str]:
    """Warnings from NVML: other processes on the GPU, rows whose clock moved or that throttled, and an
    energy window asked for where there is no counter to read."""
    notes = []
    others = gpu_state.get("other_processes") or []
    if others:
        pids = ", ".join(str(p["pid"]) for p in others)
        notes.append(f"{len(others)} other process(es) were on the GPU at the start (pid {pids}): rows may be slowed")
    flagged = [r for r in rows if r.status is Status.ok and r.flagged]
    if flagged:
        reasons = sorted({n for r in flagged for n in r.throttle_reasons or [] if n not in NOT_THROTTLING})
        throttled = f" ({', '.join(reasons)})" if reasons else ""
        notes.append(
            f"{len(flagged)} row(s) flagged (!): the SM clock moved more than {CLOCK_MOVE_TOLERANCE_PCT:g}% during "
            f"the row, or the GPU throttled{throttled}; 'flagged' in the results"
        )
    if energy_asked and gpu_state.get("nvml") and not gpu_state.get("energy_counter"):
        notes.append("--energy: this GPU has no total-energy counter in NVML; the energy fields are null")
    return notes


def spread_notes(rows: Sequence[SpeedRow], max_warmup_s: float) -> list[str]:
    """Warnings for rows whose spread is above target or whose warm-up never reached a steady time."""
    notes = []
    noisy = [r for r in rows if r.status is Status.ok and _over_spread_target(r)]
    if noisy:
        timings = sorted({r.timing for r in noisy}, key=list(Timing).index)
        targets = " / ".join(f"{SPREAD_TARGET_PCT[t]:g}% ({t.value})" for t in timings)
        notes.append(f"{len(noisy)} row(s) have an IQR above {targets} of their median (yellow)")
    wide = [r for r in rows if r.status is Status.ok and _wide_speedup(r)]
    if wide:
        notes.append(
            f"{len(wide)} row(s) have a speedup interval wider than ±{SPEEDUP_TOLERANCE_PCT:g}% (yellow): "
            "the noise leaves their speedup undecided at that precision"
        )
    unconverged = [r for r in rows if r.status is Status.ok and r.converged is False]
    if unconverged:
        notes.append(
            f"{len(unconverged)} row(s) ran out of their time budget before their speedup interval reached "
            "its target ('converged' is false in the results)"
        )
    unsettled = [r for r in rows if r.status is Status.ok and r.settled is False]
    if unsettled:
        notes.append(
            f"{len(unsettled)} row(s) did not reach a steady time per call within {max_warmup_s:g} s of "
            "warm-up ('settled' is false in the results); their times may drift"
        )
    return notes


def _sm_clock_cell(row: SpeedRow) -> str:
    text = _fmt(row.sm_clock_mhz, 0)
    return f"[yellow]{text} ![/]" if row.flagged else text


def _head_cell(row: SpeedRow) -> str:
    return f"{row.head.value} ({format_class_count(row.padded_to)})" if row.padded_to else row.head.value


def _iqr_cell(row: SpeedRow) -> str:
    if row.iqr_pct is None:
        return "—"
    return f"[yellow]{row.iqr_pct:.2f}[/]" if _over_spread_target(row) else f"{row.iqr_pct:.2f}"


# Header, value, when the column is shown (None: always; columns that no row fills are left out), and its
# priority: 0 always printed, higher left out first where the console is narrow (the CSV and JSON have all).
_SPEED_COLUMNS: list[tuple[str, Callable[[SpeedRow], str], Callable[[SpeedRow], bool] | None, int]] = [
    ("ms/batch", lambda r: _fmt(r.batch_ms), None, 0),
    ("ms/ex", lambda r: _fmt(r.example_ms, 4), None, 0),
    ("IQR %", _iqr_cell, None, 3),
    # a sample that timed a block of batches: its IQR is then that of block means
    (
        "batches/sample",
        lambda r: "—" if r.calls_per_sample is None else str(r.calls_per_sample),
        lambda r: (r.calls_per_sample or 1) > 1,
        8,
    ),
    ("speedup", lambda r: _fmt_speedup(r.speedup), None, 0),
    ("95% CI", _speedup_ci_cell, lambda r: r.speedup_ci is not None, 1),
    ("paper ms/ex", lambda r: _fmt(r.paper_example_ms, 1), lambda r: r.paper_example_ms is not None, 2),
    ("paper speedup", lambda r: _fmt_speedup(r.paper_speedup), lambda r: r.paper_speedup is not None, 2),
    ("head ms", lambda r: _fmt(r.head_ms), None, 4),
    ("head floor ms", lambda r: _fmt(r.head_floor_ms), lambda r: r.head_floor_ms is not None, 6),
    ("peak MiB", lambda r: _fmt(r.peak_mem_mib, 0), lambda r: r.peak_mem_mib is not None, 5),
    ("SM MHz", lambda r: _sm_clock_cell(r), lambda r: r.sm_clock_mhz is not None, 7),
    ("mJ/batch", lambda r: _fmt(r.energy_mj_per_batch, 1), lambda r: r.energy_mj_per_batch is not None, 5),
    ("energy ratio", lambda r: _fmt_speedup(r.energy_ratio), lambda r: r.energy_ratio is not None, 5),
]
SPEED_MORE = "--wide, or the CSV/JSON"


def speed_table(rows: Sequence[SpeedRow], *, title: str, wide: bool = False) -> FittedTable:
    """Table III layout: one row per (architecture, classes, head), the paper's value beside ours; the
    columns that do not fit the console are left out (``wide``: none)."""
    columns = [(h, get, p) for h, get, shown, p in _SPEED_COLUMNS if shown is None or any(map(shown, rows))]
    specs = [ColumnSpec("arch", justify="left"), ColumnSpec("k"), ColumnSpec("head", justify="left")]
    specs += [ColumnSpec(header, priority=priority) for header, _, priority in columns]
    table = FittedTable(specs, wide=wide, more=SPEED_MORE, title=title, title_justify="left")
    previous_arch = None
    for row in rows:
        if previous_arch is not None and row.arch != previous_arch:
            table.add_section()
        previous_arch = row.arch
        cells = [shown(row.arch) if row.head is Head.full else "", format_class_count(row.classes), _head_cell(row)]
        if row.status is not Status.ok:
            label = "[bold red]OOM[/]" if row.status is Status.oom else "[bold red]failed[/]"
            table.add_row(*cells, label, *["—"] * (len(columns) - 1))
        else:
            table.add_row(*cells, *(get(row) for _, get, _ in columns))
    return table


def _per_example_with_errors(rows: Sequence[SpeedRow]) -> tuple[list[float], list[list[float]]]:
    """Median time per example, and the distances below and above it to its 95% interval (0 where there is none)."""
    medians, below, above = [], [], []
    for row in rows:
        median = (row.batch_ms or 0.0) / row.batch_size
        low, high = row.batch_ms_ci or [row.batch_ms or 0.0] * 2
        medians.append(median)
        below.append(median - low / row.batch_size)
        above.append(high / row.batch_size - median)
    return medians, [below, above]


def speed_figure(rows: Sequence[SpeedRow], hardware: str | None = None) -> Figure:
    """The paper's Fig. 1: forward time per example against the number of classes, per architecture.

    Solid lines are this run on ``hardware`` (the device's name), with error bars from the medians'
    intervals; dashed lines of the same colour are the paper's Table III on its GPU. Uses matplotlib's
    object API (no pyplot, so no global backend is changed).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.8), dpi=130)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    archs = list(dict.fromkeys(r.arch for r in rows))
    for index, arch in enumerate(archs):
        color = f"C{index % 10}"
        ok = [r for r in rows if r.arch == arch and r.head is Head.full and r.example_ms]
        if ok:
            per_example, errors = _per_example_with_errors(ok)
            label = f"{arch} ({hardware or ok[0].device})"
            ks = [r.classes for r in ok]
            ax.errorbar(ks, per_example, yerr=errors, fmt="o-", color=color, capsize=3, label=label)
        paper = PAPER_TABLE_III_SECONDS.get(arch)
        if paper:
            ks = sorted(paper)
            ax.plot(
                ks, [paper[k] * 1e3 for k in ks], "x--", color=color, alpha=0.6, label=f"{arch} (paper, {PAPER_GPU})"
            )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("number of classes k (top-layer units)")
    ax.set_ylabel("forward time per example [ms]")
    if rows:
        first = rows[0]
        ax.set_title(
            f"Forward time vs classes: {hardware or first.device}, {first.precision}, {first.timing.value} timing, "
            f"batch {first.batch_size}\n"
            f"solid: this run (95% intervals); dashed: the paper (TensorFlow on a {PAPER_GPU})",
            fontsize=9,
        )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig
