"""What a long run shows while it works: the step under way, steps done of all, time taken and an ETA, on one
line that fits the terminal."""

import io

import rich.progress
from rich.console import Console

from slcbench.console import TaskProgress, TimesColumn, render_text


def shown(progress: TaskProgress, width: int) -> str:
    return render_text(progress.view(), width=width).rstrip("\n")


def recording_console(width: int) -> Console:
    return Console(record=True, file=io.StringIO(), width=width)


def test_the_bar_shows_the_step_under_way_counts_times_and_an_eta():
    with TaskProgress(recording_console(80)) as progress:
        progress.begin("slcbench speed: 2 rows", 4)
        progress.started("resnet50 k=1 full")
        progress.advance()
        progress.started("resnet50 k=2^10 full")  # the row now measured, not the one just finished
        line = shown(progress, 80)
    assert "resnet50 k=2^10 full" in line and "k=1 full" not in line
    assert "1/4" in line
    assert "ETA " in line
    assert any(isinstance(column, TimesColumn) for column in progress._progress.columns)


def test_the_header_is_printed_once_above_the_bar():
    console = recording_console(80)
    with TaskProgress(console) as progress:
        progress.begin("slcbench train digits", 3)
        progress.note("cross-entropy: done")
    assert console.export_text().splitlines()[:2] == ["slcbench train digits", "cross-entropy: done"]


def test_a_long_label_gives_way_before_the_counts_and_times():
    for width in (80, 200):
        with TaskProgress(recording_console(width)) as progress:
            progress.begin("header", 123456)
            progress.started("net2 + relocation, ISBE tanh, mean reduction, blurred targets, seed 999")
            progress.advance(12345)
            line = shown(progress, width)
        assert len(line.splitlines()) == 1 and len(line) <= width, line
        assert "12345/123456" in line and "ETA" in line
        assert ("…" in line) == (width == 80)  # cut at 80 columns, whole at 200


def test_the_eta_is_the_mean_step_time_times_the_steps_left():
    now = [100.0]
    progress = rich.progress.Progress(TimesColumn(), get_time=lambda: now[0])
    task_id = progress.add_task("run", total=4)
    task = progress.tasks[0]
    assert TimesColumn().render(task).plain == "0:00:00, ETA -:--:--"  # nothing done: no estimate yet
    now[0] += 10.0
    progress.advance(task_id, 1)
    assert TimesColumn().render(task).plain == "0:00:10, ETA 0:00:30"
    now[0] += 3590.0
    progress.advance(task_id, 1)
    assert TimesColumn().render(task).plain == "1:00:00, ETA 1:00:00"
