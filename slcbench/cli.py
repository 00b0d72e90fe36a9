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

# Imports live in this section (not at the top) so that each feature's section merges on its own.
from rich.console import Console  # noqa: E402

from slcbench import compare as _compare  # noqa: E402
from slcbench import reporting as _reporting  # noqa: E402
from slcbench.envinfo import collect_environment  # noqa: E402

EXIT_REGRESSED = 1


@app.command("compare")
@friendly_errors
def compare_command(
    baseline: Annotated[Path, typer.Argument(help="Results file of the reference run (speed JSON or pytest-benchmark JSON).", show_default=False)],
    new: Annotated[Path, typer.Argument(help="Results file of the run to judge, of the same kind as BASELINE.", show_default=False)],
    max_regression: Annotated[str, typer.Option(
        "--max-regression",
        help="Largest slowdown that still passes, as a percentage with a % sign (10%, 2.5%). "
             "A bare number is rejected as ambiguous.",
    )] = "10%",
    basis: Annotated[_compare.Basis, typer.Option(
        "--basis", case_sensitive=False,
        help="ratio: compare each speed row's time relative to its k=1 run in the same file (cancels machine "
             "speed; rows or files without it fall back to time). time: compare median times. "
             "pytest-benchmark files have no reference and always use time.",
    )] = _compare.Basis.ratio,
    fail_on_missing: Annotated[bool, typer.Option(
        "--fail-on-missing", help="Also exit 1 when a BASELINE row is missing from NEW."
    )] = False,
) -> None:
    """Compare two results files row by row; exit 1 if a matched row got slower than the threshold.

    Exit codes: 0 no regression; 1 a matched row slower than --max-regression, or a row that ran in BASELINE failed in NEW; 2 unreadable, unknown or mismatched files.
    """
    threshold = _compare.parse_max_regression(max_regression)
    comparison = _compare.compare_files(baseline, new, threshold, basis)
    if comparison.environment_differences:
        typer.echo(
            "slcbench: warning: the runs' environments differ ("
            + "; ".join(comparison.environment_differences)
            + "): comparisons across machines are suspect",
            err=True,
        )
    summary = _reporting.render_comparison(comparison, Console())
    missing = comparison.with_verdict(_compare.Verdict.missing_in_new)
    failed = bool(comparison.with_verdict(_compare.Verdict.regressed)) or (fail_on_missing and bool(missing))
    typer.echo(f"{'FAIL' if failed else 'PASS'}: {summary}")
    if failed:
        raise typer.Exit(EXIT_REGRESSED)


@app.command("env")
@friendly_errors
def env_command(
    device: DeviceOption = DeviceChoice.auto,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print what a benchmark report needs: device, driver, CUDA, torch/torchvision/timm, CPU, threads."""
    import torch

    if device is DeviceChoice.cuda and not torch.cuda.is_available():
        raise SlcbenchError("--device cuda: CUDA is not available on this machine (torch " + torch.__version__ + ")")
    environment = collect_environment(None if device is DeviceChoice.auto else device.value)
    if as_json:
        typer.echo(_reporting.environment_json(environment))
    else:
        Console().print(_reporting.environment_table(environment))



def main() -> None:
    """Console-script entry point."""
    app()
