"""The ``slcbench env`` table."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from slcbench.console import shown


def environment_table(environment: dict[str, Any]) -> Table:
    table = Table(title="slcbench environment", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in environment.items():
        if name == "cudnn_version":
            continue
        if name == "cudnn" and "cudnn_version" in environment:
            value = environment["cudnn_version"]  # 9.24.0, not the 92400 that --json keeps beside it
        table.add_row(shown(name), "-" if value is None else shown(value))
    return table
