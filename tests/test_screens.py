"""The committed screens (docs/screens/, captured in tmux by tools/capture_screens.sh): at 80 columns
no line is wider than the terminal and no cell is cut."""

from pathlib import Path

import pytest

SCREENS = Path(__file__).resolve().parent.parent / "docs" / "screens"
REQUIRED = ["speed", "evaluate", "train", "compare", "env", "help"] + [
    f"help-{command}" for command in ("speed", "evaluate", "train", "compare", "env", "isbe")
]


def test_every_screen_is_committed_at_both_widths():
    assert sorted(p.name for p in SCREENS.glob("*.txt")) == sorted(
        f"{name}-{width}.txt" for name in REQUIRED for width in (80, 200)
    )


@pytest.mark.parametrize("name", REQUIRED)
def test_a_screen_at_80_columns_has_no_cut_cell_and_no_over_wide_line(name):
    lines = (SCREENS / f"{name}-80.txt").read_text(encoding="utf-8").splitlines()
    shown = [line for line in lines[1:] if not line.startswith("$ ")]  # the first line is the command
    assert shown and "command not found" not in "\n".join(shown) and "Traceback" not in "\n".join(shown)
    assert [line for line in shown if len(line) > 80] == []
    assert [line for line in shown if "…" in line] == []
