"""One ``slcbench compare`` as an object: the comparison, whether it fails the gate, and its files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slcbench.compare.config import CompareConfig
from slcbench.compare.files import load_side
from slcbench.compare.report import (
    comparison_document,
    comparison_markdown,
    comparison_summary,
    comparison_table,
    row_labels,
)
from slcbench.compare.verdicts import Comparison, compare_results
from slcbench.console import FittedTable
from slcbench.formats import Output
from slcbench.io import write_outputs


@dataclass(frozen=True)
class CompareRun:
    config: CompareConfig
    comparison: Comparison

    @property
    def failed(self) -> bool:
        return self.comparison.failed(
            fail_on_missing=self.config.fail_on_missing, fail_on_inconclusive=self.config.fail_on_inconclusive
        )

    def warnings(self) -> list[str]:
        return self.comparison.warnings()

    def table(self, *, wide: bool = False) -> FittedTable:
        labels, common = row_labels([row.key for row in self.comparison.rows])
        return comparison_table(self.comparison, labels, common, wide=wide)

    def verdict_line(self) -> str:
        """``PASS: ...`` or ``FAIL: ...``: the one line a CI log ends with."""
        return f"{'FAIL' if self.failed else 'PASS'}: {comparison_summary(self.comparison)}"

    def write(self) -> list[Path]:
        """The ``--json`` and ``--markdown`` files that were asked for, all or none."""
        passed = not self.failed
        outputs = []
        if self.config.json_path is not None:
            outputs.append(Output(self.config.json_path, "json", comparison_document(self.comparison, passed=passed)))
        if self.config.markdown_path is not None:
            outputs.append(Output(self.config.markdown_path, "md", comparison_markdown(self.comparison, passed=passed)))
        return write_outputs(outputs, overwrite=self.config.force)


def run_compare(config: CompareConfig) -> CompareRun:
    """Read both files and judge every row (see ``slcbench.compare.verdicts``)."""
    baseline, new = load_side(config.baseline), load_side(config.new)
    return CompareRun(config, compare_results(baseline, new, config.threshold, config.basis, config.alpha))
