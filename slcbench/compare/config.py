"""What ``slcbench compare`` is asked: two files, a threshold, a basis, a false-alarm rate, what fails the gate.

Torch- and scipy-free, so that the command line can declare its options without their import cost.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from slcbench.compare.files import side_files
from slcbench.errors import SlcbenchError
from slcbench.io import check_outputs

# An optional minus (refused with its own message), a decimal, a percent sign; ASCII digits: not '１０%'.
_PERCENT = re.compile(r"^\s*(-?)\s*(\d+(?:\.\d*)?|\.\d+)\s*%\s*$", re.ASCII)


class Basis(StrEnum):
    """What is compared: the in-run ratio to k=1 (where both rows carry one) or the time."""

    ratio = "ratio"
    time = "time"


def parse_percentage(text: str, option: str) -> float:
    """``"10%"`` -> 0.1. The percent sign is required.

    A bare number is rejected because it is ambiguous: ``10`` reads as 10% here but as 10 seconds in
    pytest-benchmark's ``--benchmark-compare-fail``, and ``0.1`` could mean 10% or 0.1%. Any
    non-negative decimal percentage is accepted; exponents such as ``1e3%`` are not.
    """
    match = _PERCENT.match(text)
    if match is not None and match.group(1):
        raise SlcbenchError(f"{option} must not be negative (0% fails on any slowdown); got {text!r}")
    if match is None:
        hint = ""
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            if math.isfinite(number) and number >= 0:
                hint = f" (did you mean {number:g}% or {number * 100:g}%?)"
        raise SlcbenchError(f"{option} must be a percentage with a % sign, e.g. 10% or 2.5%; got {text!r}{hint}")
    return float(match.group(2)) / 100.0


def parse_max_regression(text: str) -> float:
    """The regression threshold: ``"10%"`` -> 0.1 (``0%`` fails on any slowdown; ``150%`` allows 2.5x)."""
    return parse_percentage(text, "--max-regression")


@dataclass(frozen=True)
class CompareConfig:
    """What ``slcbench compare`` is asked, checked before either file is read.

    Parameters
    ----------
    baseline, new : Path
        The reference run's results file and the run to judge, of the same kind.
    max_regression : str
        The largest change that still passes, as a percentage (``"10%"``).
    basis : Basis
        ``ratio`` (each speed row relative to k=1 in its own run, where both rows carry it) or ``time``.
    false_alarm_rate : str
        The chance, at most, that unchanged code gets any row called regressed or improved
        (``"5%"``): the per-row intervals are simultaneous (Bonferroni) at this rate.
    fail_on_missing, fail_on_inconclusive : bool
        Also fail (exit 1) when a baseline row is missing from NEW, or when a row is inconclusive.
    json_path, markdown_path : Path or None
        Machine-readable verdicts, and a Markdown summary for a CI job page or a pull-request comment.
    force : bool
        Overwrite those files when they exist.
    """

    baseline: Path
    new: Path
    max_regression: str = "10%"
    basis: Basis = Basis.ratio
    false_alarm_rate: str = "5%"
    fail_on_missing: bool = False
    fail_on_inconclusive: bool = False
    json_path: Path | None = None
    markdown_path: Path | None = None
    force: bool = False

    def __post_init__(self) -> None:
        parse_max_regression(self.max_regression)
        if not 0 < self.alpha < 1:
            raise SlcbenchError(f"--false-alarm-rate must lie between 0% and 100%, got {self.false_alarm_rate!r}")
        inputs = [*side_files(self.baseline), *side_files(self.new)]  # folders of rounds: the files in them
        check_outputs({"--json": self.json_path, "--markdown": self.markdown_path}, inputs, overwrite=self.force)

    @property
    def threshold(self) -> float:
        return parse_max_regression(self.max_regression)

    @property
    def alpha(self) -> float:
        return parse_percentage(self.false_alarm_rate, "--false-alarm-rate")
