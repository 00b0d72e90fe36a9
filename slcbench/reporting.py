"""Rich tables and plots for people; files for machines are written through ``slcbench.io``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slcbench.speed import SpeedRow

# ---- speed (issue 2) -------------------------------------------------------------------------

from pathlib import Path
from typing import Sequence

from rich.table import Table

from slcbench.paper import format_class_count


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _fmt_speedup(value: float | None) -> str:
    return "—" if value is None else f"×{value:.2f}"


def speed_table(rows: Sequence["SpeedRow"], *, title: str) -> Table:
    """Table III layout: one row per (architecture, classes, head), the paper's value beside ours.

    Columns that no row fills (the paper's values for other models, GPU-only figures on a CPU run)
    are left out so the table fits a terminal.
    """
    columns = [  # header, value getter
        ("ms/batch", lambda r: _fmt(r.batch_ms)),
        ("ms/ex", lambda r: _fmt(r.example_ms, 4)),
        ("IQR %", lambda r: f"[yellow]{r.iqr_pct:.2f}[/]" if r.iqr_pct > 5.0 else f"{r.iqr_pct:.2f}"),
        ("speedup", lambda r: _fmt_speedup(r.speedup)),
        ("paper ms/ex", lambda r: _fmt(r.paper_example_ms, 1)),
        ("paper speedup", lambda r: _fmt_speedup(r.paper_speedup)),
        ("head ms", lambda r: _fmt(r.head_ms)),
        ("head floor ms", lambda r: _fmt(r.head_floor_ms)),
        ("peak MiB", lambda r: _fmt(r.peak_mem_mib, 0)),
    ]
    optional = {"paper ms/ex": "paper_example_ms", "paper speedup": "paper_speedup",
                "head floor ms": "head_floor_ms", "peak MiB": "peak_mem_mib"}
    columns = [(h, get) for h, get in columns
               if h not in optional or any(getattr(r, optional[h]) is not None for r in rows)]
    table = Table(title=title, title_justify="left")
    table.add_column("arch", justify="left")
    table.add_column("k", justify="right")
    table.add_column("head", justify="left")
    for header, _ in columns:
        table.add_column(header, justify="right")
    previous_arch = None
    for row in rows:
        if previous_arch is not None and row.arch != previous_arch:
            table.add_section()
        previous_arch = row.arch
        cells = [row.arch if row.head == "full" else "", format_class_count(row.classes), row.head]
        if row.status != "ok":
            label = "[bold red]OOM[/]" if row.status == "oom" else "[bold red]failed[/]"
            table.add_row(*cells, label, *["—"] * (len(columns) - 1))
        else:
            table.add_row(*cells, *(get(row) for _, get in columns))
    return table


def plot_speed(rows: Sequence["SpeedRow"], path: Path) -> None:
    """The paper's Fig. 1: forward time per example against the number of classes, per architecture.

    Solid lines are this run; dashed lines of the same colour are the paper's Table III (Titan X).
    Uses matplotlib's object API (no pyplot, so no global backend is changed).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        from slcbench.errors import SlcbenchError

        raise SlcbenchError("--plot needs matplotlib: pip install 'slcbench[plot]'") from None
    from slcbench.paper import PAPER_TABLE_III_SECONDS

    fig = Figure(figsize=(7.5, 4.8), dpi=130)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    archs = list(dict.fromkeys(r.arch for r in rows))
    for index, arch in enumerate(archs):
        color = f"C{index % 10}"
        ok = [r for r in rows if r.arch == arch and r.head == "full" and r.status == "ok"]
        if ok:
            ax.plot([r.classes for r in ok], [r.example_ms for r in ok], "o-", color=color, label=arch)
        paper = PAPER_TABLE_III_SECONDS.get(arch)
        if paper:
            ks = sorted(paper)
            ax.plot(ks, [paper[k] * 1e3 for k in ks], "x--", color=color, alpha=0.6, label=f"{arch} (paper)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("number of classes k (top-layer units)")
    ax.set_ylabel("forward time per example [ms]")
    first = rows[0] if rows else None
    if first is not None:
        ax.set_title(f"Forward time vs classes ({first.device}, {first.precision}, {first.timing}, batch {first.batch_size})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)

# ---- evaluate (issue 3) ----------------------------------------------------------------------

# ---- compare (issue 5) -----------------------------------------------------------------------
