"""The ``slcbench compare`` command: parse the options, compare the files, print the verdicts, set the exit code."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from slcbench.compare.report import render_comparison
from slcbench.compare.verdicts import Basis, CompareConfig, compare_files
from slcbench.console import report_console, warn
from slcbench.options import friendly_errors

EXIT_REGRESSED = 1


def compare(
    baseline: Annotated[
        Path,
        typer.Argument(
            help="Results file of the reference run (speed JSON or pytest-benchmark JSON).", show_default=False
        ),
    ],
    new: Annotated[
        Path, typer.Argument(help="Results file of the run to judge, of the same kind as BASELINE.", show_default=False)
    ],
    max_regression: Annotated[
        str,
        typer.Option(
            "--max-regression",
            help="Largest slowdown that still passes, as a percentage with a % sign (10%, 2.5%). "
            "A bare number is rejected as ambiguous.",
        ),
    ] = "10%",
    basis: Annotated[
        Basis,
        typer.Option(
            "--basis",
            case_sensitive=False,
            help="ratio: compare each speed row's time relative to its k=1 run in the same file (cancels machine "
            "speed; rows or files without it fall back to time). time: compare median times. "
            "pytest-benchmark files have no reference and always use time.",
        ),
    ] = Basis.ratio,
    fail_on_missing: Annotated[
        bool, typer.Option("--fail-on-missing", help="Also exit 1 when a BASELINE row is missing from NEW.")
    ] = False,
) -> None:
    """Compare two results files row by row; exit 1 if a matched row got slower than the threshold.

    Exit codes: 0 no regression; 1 a matched row slower than --max-regression, or a row that ran in BASELINE
    failed in NEW; 2 unreadable, unknown or mismatched files.
    """
    config = CompareConfig(baseline, new, max_regression, basis, fail_on_missing)
    comparison = compare_files(config)
    for line in comparison.warnings():
        warn(line)
    summary = render_comparison(comparison, report_console())
    failed = comparison.failed(fail_on_missing=fail_on_missing)
    typer.echo(f"{'FAIL' if failed else 'PASS'}: {summary}")
    if failed:
        raise typer.Exit(EXIT_REGRESSED)


compare_command = friendly_errors(compare)
