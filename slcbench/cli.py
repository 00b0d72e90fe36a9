"""The ``slcbench`` command line: one typer app whose commands live with their subpackages.

Each command module only parses options, calls its subpackage's library and prints. Importing this
module imports no torch: ``--help``, ``evaluate`` and ``compare`` start fast, and ``speed``,
``train`` and ``env`` import torch when they run.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from typing import Annotated

import typer

import slcbench
from slcbench.compare.cli import compare_command
from slcbench.env.cli import env_command
from slcbench.evaluate.cli import evaluate_command
from slcbench.isbe.cli import isbe_command
from slcbench.options import EXIT_INTERRUPTED, EXIT_OUTPUT_CLOSED, EXIT_OUTPUT_FAILED, OutputClosed, fail
from slcbench.speed.cli import speed_command
from slcbench.train.cli import train_command

app = typer.Typer(
    name="slcbench",
    help="Benchmarks for Single Logit Classification (SLC): speed, SLC metrics and PoLS losses.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("speed")(speed_command)
app.command("evaluate")(evaluate_command)
app.command("train")(train_command)
app.command("isbe")(isbe_command)
app.command("compare")(compare_command)
app.command("env")(env_command)


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
    raise SystemExit(code or 0)
