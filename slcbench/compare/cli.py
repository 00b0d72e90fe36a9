"""The ``slcbench compare`` command: parse the options, compare the files, print the verdicts, set the exit code."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from slcbench.compare.config import Basis, CompareConfig
from slcbench.console import print_table, report_console, warn
from slcbench.options import ForceOption, WideOption, friendly_errors

EXIT_REGRESSED = 1

BASIS_HELP = (
    "ratio: judge each speed row's time relative to its k=1 run in the same file (cancels machine speed; on one "
    "machine absolute times are reported too). time: judge times. pytest-benchmark files have no reference and "
    "always use time."
)
FALSE_ALARM_HELP = (
    "The chance, at most, that unchanged code gets any row called regressed or improved: every row's interval is "
    "taken at 1 - rate / rows (Bonferroni), so all hold together."
)


def compare(
    baseline: Annotated[
        Path,
        typer.Argument(
            help="Results of the reference run: a speed JSON or pytest-benchmark JSON file, or a folder "
            "of them (rounds of one run, pooled; their intervals then come from the rounds)."
        ),
    ],
    new: Annotated[
        Path,
        typer.Argument(
            help="Results of the run to judge (a file or a folder of rounds), of the same kind as BASELINE."
        ),
    ],
    max_regression: Annotated[
        str,
        typer.Option(
            "--max-regression",
            help="Largest change that still passes, as a percentage with a % sign (10%, 2.5%). "
            "A bare number is rejected as ambiguous.",
        ),
    ] = "10%",
    basis: Annotated[Basis, typer.Option("--basis", case_sensitive=False, help=BASIS_HELP)] = Basis.ratio,
    false_alarm_rate: Annotated[str, typer.Option("--false-alarm-rate", help=FALSE_ALARM_HELP)] = "5%",
    fail_on_missing: Annotated[
        bool, typer.Option("--fail-on-missing", help="Also exit 1 when a BASELINE row is missing from NEW.")
    ] = False,
    fail_on_inconclusive: Annotated[
        bool, typer.Option("--fail-on-inconclusive", help="Also exit 1 when the noise leaves a row undecided.")
    ] = False,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write every row's verdict, change and interval as JSON.")
    ] = None,
    markdown_path: Annotated[
        Path | None,
        typer.Option("--markdown", help="Write a Markdown summary (for a CI job page or a pull-request comment)."),
    ] = None,
    force: ForceOption = False,
    wide: WideOption = False,
) -> None:
    """Compare two results files row by row: a change with its interval and a verdict for each.

    Verdicts: regressed (slower beyond the threshold, and significantly), improved, ok (the interval lies within
    the threshold), inconclusive (too noisy to tell), not-comparable, missing-in-new, new-only. Exit codes:
    0 pass; 1 a row regressed (or stopped running), or with --fail-on-missing / --fail-on-inconclusive those;
    2 unreadable, unknown or mismatched files.
    """
    from slcbench.compare.run import run_compare  # imports scipy: only when comparing

    config = CompareConfig(
        baseline,
        new,
        max_regression,
        basis,
        false_alarm_rate,
        fail_on_missing,
        fail_on_inconclusive,
        json_path,
        markdown_path,
        force,
    )
    run = run_compare(config)
    for line in run.warnings():
        warn(line)
    print_table(report_console(), run.table(wide=wide), wide=wide)
    typer.echo(run.verdict_line())
    run.write()
    if run.failed:
        raise typer.Exit(EXIT_REGRESSED)


compare_command = friendly_errors(compare)
