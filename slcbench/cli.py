"""The ``slcbench`` command line: a thin typer layer over the library's pure functions.

Every command turns SlcbenchError (bad input, impossible request) into one line on stderr and exit
code 2; it never shows a traceback for a user's mistake. Options that several commands share are
declared once below as ``Annotated`` types.
"""

from __future__ import annotations

import functools
from enum import Enum
from pathlib import Path
from typing import Annotated, Callable, Optional, TypeVar

import typer

from slcbench.errors import SlcbenchError

app = typer.Typer(
    name="slcbench",
    help="Benchmarks for Single Logit Classification (SLC): speed, SLC metrics and PoLS losses.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_BAD_INPUT = 2

F = TypeVar("F", bound=Callable[..., object])


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print ``slcbench: error: message`` on stderr and return the Exit to raise."""
    typer.echo(f"slcbench: error: {message}", err=True)
    return typer.Exit(code)


def friendly_errors(func: F) -> F:
    """Turn SlcbenchError into one line on stderr and exit code 2, Ctrl-C into exit 130."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except SlcbenchError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            raise fail("interrupted", code=130) from None

    return wrapper  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Options shared by several commands (declared once, like pytest-benchmark's option groups).
# ---------------------------------------------------------------------------------------------


class DeviceChoice(str, Enum):
    auto = "auto"
    cuda = "cuda"
    cpu = "cpu"


DeviceOption = Annotated[
    DeviceChoice,
    typer.Option("--device", help="Where to run: auto = CUDA when present, else CPU.", case_sensitive=False),
]
ForceOption = Annotated[bool, typer.Option("--force", help="Overwrite output files that already exist.")]
SeedOption = Annotated[int, typer.Option("--seed", help="Random seed (inputs, weights, sampling).")]
OutputDirOption = Annotated[
    Path,
    typer.Option("--output", "-o", help="Folder for results (created if missing); files are new and timestamped."),
]


# ---- speed (issue 2) -------------------------------------------------------------------------

# ---- evaluate (issue 3) ----------------------------------------------------------------------

# ---- train (issue 4) -------------------------------------------------------------------------

# ---- compare and env (issue 5) ---------------------------------------------------------------


def main() -> None:
    """Console-script entry point."""
    app()
