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
        table.add_row(shown(name), "-" if value is None else shown(value))
    return table
