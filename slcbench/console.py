"""Printing for people: the report console, progress of long runs, warnings and the list of files written."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

import rich.progress
import typer
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, JustifyMethod, RenderableType, RenderResult
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, Task, TaskID, TextColumn
from rich.table import Column, Table
from rich.text import Text

from slcbench.errors import printable


class _ReportConsole(Console):
    def on_broken_pipe(self) -> None:
        # rich's own handling exits 1, compare's regression code: raise the pipe's error for main() instead.
        raise BrokenPipeError


def report_console() -> Console:
    """A rich console; piped or redirected output (CI logs, files) gets COLUMNS, else 160 (not rich's guess of 80)."""
    asked = os.environ.get("COLUMNS", "").strip()
    return _ReportConsole(width=None if sys.stdout.isatty() or asked.isdigit() and int(asked) > 0 else 160)


def warn(message: str) -> None:
    """One ``slcbench: warning: ...`` line on stderr."""
    typer.echo(f"slcbench: warning: {printable(message)}", err=True)


def shown(text: object) -> str:
    """A path or a name from the user, for rich: on one line, encodable, never read as markup."""
    return escape(printable(str(text)))


def print_written(console: Console, paths: Sequence[Path]) -> None:
    console.print("wrote " + ", ".join(shown(p) for p in paths))


class Progress(Protocol):
    """What a long run tells its caller: a header and a step count, each step as it starts, steps done, and
    lines worth printing on the way. ``TaskProgress`` shows them; tests can record them."""

    def begin(self, header: str, total: int) -> None: ...

    def started(self, label: str) -> None: ...

    def advance(self, steps: int = 1) -> None: ...

    def note(self, line: str) -> None: ...


def _clock(seconds: float) -> str:
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}"


class TimesColumn(ProgressColumn):
    """Time taken and time left ("0:00:12, ETA 0:01:23"), the latter from the mean time of the steps done so far.

    rich's TimeRemainingColumn estimates from the last 30 s of steps, and shows nothing when a step (a speed
    row, a training run) takes longer than that.
    """

    def render(self, task: Task) -> Text:
        elapsed = (task.finished_time if task.finished else task.elapsed) or 0.0
        left = "-:--:--"
        if task.total is not None and task.completed > 0:
            left = _clock(elapsed / task.completed * max(task.total - task.completed, 0))
        return Text(f"{_clock(elapsed)}, ETA {left}", style="progress.remaining")


class TaskProgress:
    """A transient progress bar: the header line once, then the step under way, steps done of all (M/N), time
    taken and an estimate of the time left.

    Used as a context manager so that the bar is removed however the work ends. The step's label gives way
    (cut with "…") before the counts and times do, so the bar stays on one line at 80 columns.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        rest = console.width - 36  # what "123456/123456" and "0:00:12, ETA 0:01:23" leave of the line
        label = max(10, rest * 2 // 3)
        self._progress = rich.progress.Progress(
            TextColumn("{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis", max_width=label)),
            BarColumn(bar_width=max(5, min(40, rest - label))),
            MofNCompleteColumn(),
            TimesColumn(),
            console=console,
            transient=True,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> TaskProgress:
        self._progress.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._progress.__exit__(kind, value, traceback)

    def begin(self, header: str, total: int) -> None:
        self.console.print(header)
        self._task = self._progress.add_task("starting", total=total)

    def started(self, label: str) -> None:
        if self._task is not None:
            self._progress.update(self._task, description=shown(label))

    def advance(self, steps: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, steps)

    def note(self, line: str) -> None:
        """A line printed above the bar."""
        self.console.print(line)

    def view(self) -> RenderableType:
        """What the bar shows now (for tests: the live display draws it only on a terminal)."""
        return self._progress.get_renderable()


def render_text(renderable: object, *, width: int) -> str:
    """Plain text of a rich renderable at ``width`` columns (for files such as table.txt)."""
    import io

    recorder = Console(record=True, width=width, file=io.StringIO())
    recorder.print(renderable, crop=False)
    return recorder.export_text()


# A table's width beyond its columns': a rule and a space of padding either side of each column, one closing rule.
COLUMN_OVERHEAD = 3
TABLE_EDGE = 1
NAME_WIDTH = 20  # a name's column is this wide (or as wide as its longest name) while the console allows
NAME_MIN_WIDTH = 8  # ... and never narrower than this where even the essential columns do not fit


def table_width(column_widths: Sequence[int]) -> int:
    """Columns the default rich table takes with these column widths (box, edges and padding included)."""
    return sum(column_widths) + COLUMN_OVERHEAD * len(column_widths) + TABLE_EDGE


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a ``FittedTable``: its header, and how soon it is left out when the console is narrow.

    ``priority`` 0 is always shown; higher numbers are left out first. A ``flexible`` column holds names (files, rows):
    it takes the width the other columns leave, and its names break over lines at ``/``.
    """

    header: str
    justify: JustifyMethod = "right"
    priority: int = 0
    flexible: bool = False
    style: str | None = None

    @property
    def name(self) -> str:
        return " ".join(Text.from_markup(self.header).plain.split())


def _lines_width(text: Text) -> int:
    return max((cell_len(line) for line in text.plain.split("\n")), default=0)


def pick_columns(specs: Sequence[ColumnSpec], needs: Sequence[int], width: int) -> list[int]:
    """The indices of the columns shown in ``width`` columns: every priority-0 column, then the others by
    priority (in table order within one) while the table still fits, each at its ``needs`` width."""
    chosen = {i for i, spec in enumerate(specs) if spec.priority == 0}
    for i in sorted((i for i, spec in enumerate(specs) if spec.priority > 0), key=lambda i: specs[i].priority):
        if table_width([needs[j] for j in chosen | {i}]) <= width:
            chosen.add(i)
    return sorted(chosen)


def fold_path(text: Text, width: int) -> Text:
    """``text`` broken over lines after ``/`` so that each line fits ``width`` where its parts do."""
    plain = text.plain
    if "\n" in plain or len(plain) <= width:
        return text
    breaks = [i + 1 for i, char in enumerate(plain) if char == "/" and i + 1 < len(plain)]
    cuts: list[int] = []
    start = 0
    while len(plain) - start > width:
        later = [b for b in breaks if b > start]
        if not later:
            break
        fitting = [b for b in later if b <= start + width]
        start = fitting[-1] if fitting else later[0]
        cuts.append(start)
    return Text("\n").join(text.divide(cuts)) if cuts else text


@dataclass(frozen=True)
class FittedColumn:
    """A column of a ``FittedTable`` as its rows filled it: its spec and its cells, as given."""

    spec: ColumnSpec
    cells: list[str | Text]

    @property
    def header(self) -> str:
        return self.spec.header


def _as_text(cell: str | Text) -> Text:
    return cell if isinstance(cell, Text) else Text.from_markup(cell)


class FittedTable:
    """A rich table that picks its columns by the width it is printed at, so that no number is cut.

    The columns that do not fit (highest ``priority`` first) are left out and named in a line below the
    table, which says where they are (``more``: ``--wide`` and the files the command writes). With ``wide``
    every column is shown at its full width, however wide the table gets.
    """

    def __init__(
        self,
        columns: Sequence[ColumnSpec],
        *,
        wide: bool = False,
        more: str = "--wide",
        title: str | None = None,
        caption: str | None = None,
        title_justify: JustifyMethod = "center",
        show_header: bool = True,
    ) -> None:
        self.specs = list(columns)
        self.wide = wide
        self.more = more
        self.title, self.caption, self.title_justify, self.show_header = title, caption, title_justify, show_header
        self.rows: list[list[str | Text] | None] = []  # None: a section rule

    @property
    def columns(self) -> list[FittedColumn]:
        """Every column with its cells, shown or not."""
        filled = [row for row in self.rows if row is not None]
        return [FittedColumn(spec, [row[i] for row in filled]) for i, spec in enumerate(self.specs)]

    def add_row(self, *cells: str | Text) -> None:
        if len(cells) != len(self.specs):
            raise ValueError(f"a row of {len(cells)} cells in a table of {len(self.specs)} columns")
        self.rows.append(list(cells))

    def add_section(self) -> None:
        self.rows.append(None)

    def _cells(self, index: int) -> list[Text]:
        return [_as_text(row[index]) for row in self.rows if row is not None]

    def natural_width(self, index: int) -> int:
        """The column's width with no line wrapped: its longest header line or cell line."""
        header = _lines_width(Text.from_markup(self.specs[index].header)) if self.show_header else 0
        return max([header, *(_lines_width(cell) for cell in self._cells(index))])

    def header_word(self, index: int) -> int:
        """The width of the column's longest header word (headers wrap between words, never within one)."""
        words = Text.from_markup(self.specs[index].header).plain.split() if self.show_header else []
        return max((cell_len(word) for word in words), default=0)

    def need(self, index: int) -> int:
        """The narrowest the column may be: its longest header word, and its longest cell (a name: less)."""
        header = self.header_word(index)
        if self.specs[index].flexible:
            return max(header, min(self.natural_width(index), NAME_WIDTH))
        return max([header, *(_lines_width(cell) for cell in self._cells(index))])

    def widths(self, max_width: int) -> tuple[list[int], list[int]]:
        """The columns shown and their widths in ``max_width`` columns (all at full width with ``wide``)."""
        every = range(len(self.specs))
        naturals = [self.natural_width(i) for i in every]
        if self.wide:
            return list(every), naturals
        needs = [self.need(i) for i in every]
        chosen = pick_columns(self.specs, needs, max_width)
        widths = [needs[i] for i in chosen]
        # even the essential columns too wide: names give way (down to a few characters), never numbers
        for position, index in enumerate(chosen):
            excess = table_width(widths) - max_width
            if excess > 0 and self.specs[index].flexible:
                widths[position] = max(self.header_word(index), NAME_MIN_WIDTH, widths[position] - excess)
        # room left over goes to names first, then to headers that would otherwise wrap
        for names_first in (True, False):
            for position, index in enumerate(chosen):
                if self.specs[index].flexible != names_first:
                    continue
                spare = max_width - table_width(widths)
                widths[position] += max(0, min(spare, naturals[index] - widths[position]))
        return chosen, widths

    def table(self, max_width: int) -> tuple[Table, list[ColumnSpec]]:
        """The rich table for ``max_width`` columns, and the columns left out."""
        chosen, widths = self.widths(max_width)
        table = Table(
            title=self.title, caption=self.caption, title_justify=self.title_justify, show_header=self.show_header
        )
        for index, width in zip(chosen, widths, strict=True):
            spec = self.specs[index]
            table.add_column(spec.header, justify=spec.justify, style=spec.style, width=width, overflow="fold")
        for row in self.rows:
            if row is None:
                table.add_section()
                continue
            cells = [row[i] for i in chosen]
            table.add_row(
                *(
                    fold_path(_as_text(cell), width) if self.specs[i].flexible else cell
                    for i, cell, width in zip(chosen, cells, widths, strict=True)
                )
            )
        return table, [spec for i, spec in enumerate(self.specs) if i not in chosen]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table, left_out = self.table(options.max_width)
        full = table_width([column.width or 0 for column in table.columns])
        yield from console.render(table, options.update_width(max(full, options.max_width)))
        if left_out:
            names = ", ".join(spec.name for spec in left_out)
            yield Text(
                f"{len(left_out)} column{'s' if len(left_out) > 1 else ''} left out at {options.max_width} columns "
                f"({names}): {self.more}",
                style="dim",
            )


def print_table(console: Console, renderable: object, *, wide: bool = False) -> None:
    """Print a report's tables; with ``wide`` lines longer than the console are kept whole, not cropped."""
    console.print(renderable, crop=not wide)
