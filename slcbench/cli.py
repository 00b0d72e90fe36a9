"""The ``slcbench`` command line: one typer app whose commands live with their subpackages.

Each command module only parses options, calls its subpackage's library and prints. Importing this
module imports no torch: ``--help``, ``evaluate`` and ``compare`` start fast, and ``speed``,
``train`` and ``env`` import torch when they run.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import os
import re
import sys
from typing import Annotated, Any

import typer
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

import slcbench
from slcbench.compare.cli import compare_command
from slcbench.env.cli import env_command
from slcbench.evaluate.cli import evaluate_command
from slcbench.isbe.cli import isbe_command
from slcbench.options import (
    EXIT_INTERRUPTED,
    EXIT_OUTPUT_CLOSED,
    EXIT_OUTPUT_FAILED,
    OutputClosed,
    fail,
    interrupt_reported,
)
from slcbench.speed.cli import speed_command
from slcbench.train.cli import train_command

# typer's own help shows `--json <bool>`, `{files}...` and ~17 columns of help text at 80: slcbench draws its own.
HELP_MAX_WIDTH = 120  # help wider than this is hard to read on a wide terminal
_TYPE_METAVARS = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "path": "PATH", "bool": "BOOLEAN"}


def option_metavar(param: Any, ctx: Any) -> str:
    """What an option shows after its names: nothing for a flag, else click's metavar (TEXT, INTEGER, [a|b])."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    if param.metavar:
        return str(param.metavar)
    make_metavar = getattr(param, "make_metavar", None)
    if make_metavar is not None:  # typer on click's own classes
        try:
            return str(make_metavar(ctx))
        except TypeError:  # click < 8.2 takes no context
            return str(make_metavar())
    # typer's vendored click: "<int>", "<auto|cuda|cpu>", "<list[float]>", "<int range>", "<str>..."
    label = str(param.display_type_rich(ctx) or "")
    repeat = "..." if label.endswith("...") else ""
    inner = label.removesuffix("...").removeprefix("<").removesuffix(">")
    inner = re.sub(r"^list\[(.*)\]$", r"\1", inner)
    if "|" in inner:
        return f"[{inner}]{repeat}"
    return " ".join(_TYPE_METAVARS.get(word, word.upper()) for word in inner.split()) + repeat


def argument_name(param: Any) -> str:
    """An argument as click names it: FILES... (its metavar, or its name in capitals; ... when it repeats)."""
    return str(param.metavar or (param.name or "").upper()) + ("..." if param.nargs != 1 else "")


def argument_usage(param: Any) -> str:
    """An argument in a usage line: FILES..., [NAME] when it may be left out."""
    return argument_name(param) if param.required else f"[{argument_name(param)}]"


def _paragraphs(text: str) -> list[str]:
    """click's help text conventions: cut at \\f, blank lines part paragraphs, \\b keeps a paragraph's lines."""
    paragraphs = []
    for block in inspect.cleandoc(text.split("\f")[0]).split("\n\n"):
        if block.startswith("\b"):
            paragraphs.append(block.removeprefix("\b").strip("\n"))
        elif block.strip():
            paragraphs.append(" ".join(block.split()))
    return paragraphs


def _help_text(markup: str, extras: str = "") -> Text:
    """Help written for typer's rich markup mode (e.g. ``\\[default: all]``), with click's [default: ...] after it."""
    text = Text.from_markup(" ".join(markup.split()))
    if extras:
        text.append(("  " if markup.strip() else "") + extras, style="dim")
    return text


def _param_row(param: Any, ctx: Any) -> tuple[Text, Text] | None:
    record = param.get_help_record(ctx)
    if record is None or getattr(param, "hidden", False):
        return None
    base = param.help or ""
    full = record[1] or ""
    extras = full[len(base) :].strip() if full.startswith(base) else ""
    if param.param_type_name == "argument":
        return Text(argument_name(param), style="bold cyan"), _help_text(base, extras)
    names = Text(", ".join(sorted(param.opts, key=lambda opt: (opt.startswith("--"), len(opt)))), style="bold cyan")
    if param.secondary_opts:
        names.append(" / ")
        names.append(", ".join(param.secondary_opts), style="bold magenta")
    metavar = option_metavar(param, ctx)
    if metavar:
        names.append(" " + metavar, style="yellow")
    return names, _help_text(base, extras)


def _panel(title: str, rows: list[tuple[Text, Text]], width: int) -> Panel:
    """Two columns, names and help; a name too long for its column gets a line of its own, never an ellipsis."""
    inner = width - 4  # the panel's borders and padding
    column = min(max(row[0].cell_len for row in rows), 30, max(12, inner * 2 // 5))  # click's 30 at most
    parts: list[RenderableType] = []
    grid: Table | None = None
    for names, help_text in rows:
        if names.cell_len > column:
            grid = None
            parts.append(names)
            names = Text()
        if grid is None:
            grid = Table.grid(padding=(0, 0, 0, 2), collapse_padding=True)
            grid.add_column(width=column, no_wrap=True)
            grid.add_column(width=inner - column - 2, overflow="fold")  # a long word folds, never cut
            parts.append(grid)
        grid.add_row(names, help_text)
    return Panel(Group(*parts), title=title, title_align="left", border_style="dim", width=width)


def print_help(command: Any, ctx: Any) -> None:
    """Usage, description, then panels of arguments, options and commands, in the terminal's width (<= 120).

    typer >= 0.2x draws help from its vendored click, where no parameter has click's ``make_metavar``:
    ``rich_utils._print_options_panel`` shows ``TyperOption.display_type_rich`` (``<bool>``, ``<str>``, built
    from the annotation) for every option, flags included, and ``TyperArgument._usage_display_name`` writes a
    required argument as ``{name}`` in lower case. Its table has six columns (option, short, negative option,
    short, type, help) that rich collapses to equal widths when the line is short, which cuts names with "…".
    Here: two columns, click's metavars (TEXT, INTEGER, [a|b]; none for a flag) and FILES... in usage lines.
    """
    console = Console(highlight=False)
    width = min(ctx.terminal_width or console.width, ctx.max_content_width or HELP_MAX_WIDTH)
    console = Console(highlight=False, width=width)
    console.print(Padding(Text(command.get_usage(ctx).strip(), style="bold"), 1))
    for number, paragraph in enumerate(_paragraphs(command.help or "")):
        console.print(Padding(Text.from_markup(paragraph), (1 if number else 0, 1, 0, 1)))
    panels: dict[str, list[tuple[Text, Text]]] = {}
    for param in command.get_params(ctx):
        row = _param_row(param, ctx)
        if row is not None:
            kind = "Arguments" if param.param_type_name == "argument" else "Options"
            panels.setdefault(getattr(param, "rich_help_panel", None) or kind, []).append(row)
    ordered = sorted(panels.items(), key=lambda item: (item[0] != "Arguments", item[0] != "Options"))
    if command.help:
        console.print()
    for title, rows in ordered:
        console.print(_panel(title, rows, width))
    list_commands = getattr(command, "list_commands", None)
    if list_commands is not None:
        commands = [(name, command.get_command(ctx, name)) for name in list_commands(ctx)]
        rows = [
            (
                Text(name, style="bold cyan"),
                Text.from_markup((_paragraphs(sub.short_help or sub.help or "") or [""])[0]),
            )
            for name, sub in commands
            if sub is not None and not sub.hidden
        ]
        if rows:
            console.print(_panel("Commands", rows, width))
    for paragraph in _paragraphs(command.epilog or ""):
        console.print(Padding(Text.from_markup(paragraph), (1, 1, 0, 1)))


class SlcbenchCommand(TyperCommand):
    """A command whose help is ``print_help``'s and whose usage line names arguments as click does (FILES...)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        print_help(self, ctx)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        return pieces + [argument_usage(p) for p in self.get_params(ctx) if p.param_type_name == "argument"]


class SlcbenchGroup(TyperGroup):
    """The top-level group, its help drawn by ``print_help``."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        print_help(self, ctx)


app = typer.Typer(
    name="slcbench",
    cls=SlcbenchGroup,
    help="Benchmarks for Single Logit Classification (SLC): speed, SLC metrics and PoLS losses.",
    no_args_is_help=True,
    add_completion=True,
    context_settings={"max_content_width": HELP_MAX_WIDTH},
    pretty_exceptions_enable=False,
)
app.command("speed", cls=SlcbenchCommand)(speed_command)
app.command("evaluate", cls=SlcbenchCommand)(evaluate_command)
app.command("train", cls=SlcbenchCommand)(train_command)
app.command("isbe", cls=SlcbenchCommand)(isbe_command)
app.command("compare", cls=SlcbenchCommand)(compare_command)
app.command("env", cls=SlcbenchCommand)(env_command)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"slcbench {slcbench.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Benchmarks for Single Logit Classification (SLC): speed, SLC metrics and PoLS losses."""


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so that the interpreter's last flush cannot fail again."""
    if sys.stdout is not None:
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main() -> None:
    """Console-script entry point (also ``python -m slcbench``).

    Usage errors (an unknown option, a value outside a choice, a missing argument) get the same
    one-line treatment as SlcbenchError instead of click's multi-line box. They are recognised by
    click's exception interface (``format_message``, ``exit_code``) because typer has moved from
    click's classes to its own vendored copies between the releases we support.

    Standard output that goes away (a closed pipe, as in ``slcbench compare A B | head -1``, or a
    closed descriptor) ends the run quietly with ``EXIT_OUTPUT_CLOSED``; one that cannot be written
    (a full disk, ``> /dev/full``) with ``EXIT_OUTPUT_FAILED`` and one line on stderr. Neither is
    ``compare``'s regression code.
    """
    if sys.stdout is None:
        raise SystemExit(EXIT_OUTPUT_CLOSED)
    interrupt_reported.clear()
    try:
        try:
            code = app(prog_name="slcbench", standalone_mode=False)
        finally:
            sys.stdout.flush()
    except (BrokenPipeError, OutputClosed):
        _silence_stdout()
        raise SystemExit(EXIT_OUTPUT_CLOSED) from None
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EIO, errno.EBADF, errno.EFBIG, errno.EDQUOT):
            raise
        _silence_stdout()
        with contextlib.suppress(OSError):
            fail(f"cannot write to standard output: {exc.strerror}")
        raise SystemExit(EXIT_OUTPUT_FAILED) from None
    except typer.Abort:
        raise SystemExit(fail("interrupted", code=EXIT_INTERRUPTED).exit_code) from None
    except Exception as exc:
        exit_code, format_message = getattr(exc, "exit_code", None), getattr(exc, "format_message", None)
        if not (callable(format_message) and isinstance(exit_code, int)):
            raise
        message = " ".join(str(format_message()).split())
        if not message:  # no arguments at all: click has printed the help already
            raise SystemExit(exit_code) from None
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        raise SystemExit(fail(message + hint, code=exit_code).exit_code) from None
    if code == EXIT_INTERRUPTED and not interrupt_reported.is_set():
        fail("interrupted", code=EXIT_INTERRUPTED)
    raise SystemExit(code or 0)
