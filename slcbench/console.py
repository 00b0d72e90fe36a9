"""Printing for people: the report console, progress of long runs, warnings and the list of files written."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol

import rich.progress
import typer
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, Task, TaskID, TextColumn
from rich.table import Column
from rich.text import Text

from slcbench.errors import printable


class _ReportConsole(Console):
    def on_broken_pipe(self) -> None:
        # rich's own handling exits 1, compare's regression code: raise the pipe's error for main() instead.
        raise BrokenPipeError


def report_console() -> Console:
    """A rich console; piped or redirected output (CI logs, files) gets 160 columns, not rich's 80-column guess."""
    return _ReportConsole(width=None if sys.stdout.isatty() else 160)


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
    recorder.print(renderable)
    return recorder.export_text()
