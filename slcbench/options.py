"""What every command shares: option types declared once, and the one-line treatment of bad input.

Every command turns SlcbenchError (bad input, an impossible request) into one line on stderr and
exit code 2; it never shows a traceback for a user's mistake.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from slcbench.device import DeviceChoice
from slcbench.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OUTPUT_CLOSED,
    EXIT_OUTPUT_FAILED,
    SlcbenchError,
    printable,
)

__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERRUPTED", "EXIT_OUTPUT_CLOSED", "EXIT_OUTPUT_FAILED"]

F = TypeVar("F", bound=Callable[..., Any])


# Set once an interrupt has been reported: typer turns a Ctrl-C that lands while it parses options
# (it imports pydantic then) into exit code 130 without a word, and slcbench.cli.main says it then.
interrupt_reported = threading.Event()


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print ``slcbench: error: message`` on one line of stderr and return the Exit to raise."""
    typer.echo(f"slcbench: error: {printable(message)}", err=True)
    if code == EXIT_INTERRUPTED:
        interrupt_reported.set()
    return typer.Exit(code)


class OutputClosed(Exception):
    """Standard output went away mid-run (click would turn the pipe's OSError into exit 1, the regression code)."""


def friendly_errors(func: F) -> F:
    """Turn SlcbenchError into one line on stderr and exit code 2, Ctrl-C into exit 130, a closed
    standard output into ``OutputClosed`` for ``slcbench.cli.main``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SlcbenchError as exc:
            raise fail(str(exc)) from None
        except BrokenPipeError:
            raise OutputClosed from None
        except MemoryError:
            raise fail("out of memory: the input or the work asked for is larger than this machine allows") from None
        except KeyboardInterrupt:
            raise fail("interrupted", code=EXIT_INTERRUPTED) from None

    return wrapper  # type: ignore[return-value]


DeviceOption = Annotated[
    DeviceChoice,
    typer.Option("--device", help="Where to run: auto = CUDA when present, else CPU.", case_sensitive=False),
]
ForceOption = Annotated[bool, typer.Option("--force", help="Overwrite output files that already exist.")]
WideOption = Annotated[
    bool,
    typer.Option(
        "--wide",
        help="Print every column of the result tables, however wide; by default those that do not fit the "
        "terminal are left out (and named below the table).",
    ),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Random seed (inputs, weights, sampling).")]
OutputDirOption = Annotated[
    Path,
    typer.Option(
        "--output",
        "-o",
        help="Folder for results, created if missing (runs/ is ignored by git in a checkout); new timestamped files.",
    ),
]
