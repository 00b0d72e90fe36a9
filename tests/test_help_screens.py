"""What a person sees in ``--help``: every screen fits the terminal at 80 and 200 columns, names no option
by half, shows a value placeholder only where an option takes a value, and writes arguments as FILES...."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from slcbench.cli import app
from tests.test_cli_entry import run_main

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [None, "speed", "evaluate", "train", "isbe", "compare", "env"]
TYPER_PLACEHOLDER = re.compile(r"<(bool|str|int|float|path|list\[\w+\])>")


def click_command(name: str | None):
    group = typer.main.get_command(app)
    if name is None:
        return group
    with typer.Context(group) as ctx:
        return group.get_command(ctx, name)


def help_screen(name: str | None, columns: int) -> str:
    args = [name, "--help"] if name else ["--help"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": str(columns), "TERMINAL_WIDTH": None})
    assert result.exit_code == 0, result.output
    return result.stdout


def option_names(name: str | None) -> list[tuple[str, bool]]:
    """(an option's name, whether it is a flag) for every option of the command, --help included."""
    command = click_command(name)
    with typer.Context(command) as ctx:
        params = command.get_params(ctx)
    return [
        (opt, bool(getattr(param, "is_flag", False)))
        for param in params
        if param.param_type_name == "option"
        for opt in [*param.opts, *param.secondary_opts]
    ]


@pytest.mark.parametrize("columns", [80, 200])
@pytest.mark.parametrize("name", COMMANDS)
def test_help_fits_the_terminal_and_names_every_option_in_full(name, columns):
    screen = help_screen(name, columns)
    assert "Usage:" in screen
    widths = [len(line) for line in screen.splitlines()]
    assert max(widths) <= columns, screen
    assert "…" not in screen  # rich's mark of a cut name or text
    assert not TYPER_PLACEHOLDER.search(screen), screen
    for option, is_flag in option_names(name):
        # in full: not followed by more of a name (cut, or part of a longer one)
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", screen), (option, screen)
        if is_flag:  # a flag takes no value: nothing but spaces, "/" or the border after its name
            assert re.search(rf"(?<![\w-]){re.escape(option)}(  | /|,| *│| *$)", screen, re.M), (option, screen)


@pytest.mark.parametrize("columns", [80, 200])
def test_usage_lines_name_arguments_as_click_does(columns):
    assert "Usage: slcbench evaluate [OPTIONS] FILES..." in help_screen("evaluate", columns)
    assert "Usage: slcbench compare [OPTIONS] BASELINE NEW" in help_screen("compare", columns)
    assert "Usage: slcbench [OPTIONS] COMMAND [ARGS]..." in help_screen(None, columns)
    assert "{" not in help_screen("evaluate", columns)


def test_options_with_values_show_their_metavar_and_flags_none():
    speed = help_screen("speed", 200)
    for shown in [
        "--classes TEXT",
        "--batch-size INTEGER",
        "--row-budget FLOAT",
        "--device [auto|cuda|cpu]",
        "--pad-head N",
        "--resume FILE",
        "-o, --output PATH",
        "--cudnn-benchmark / --no-cudnn-benchmark",
    ]:
        assert shown in speed, shown
    assert "slcbench[cluster]" in speed  # help text markup does not eat the extra's name
    assert re.search(r"--recall FLOAT\s", help_screen("evaluate", 200))
    assert re.search(r"--json\s{2,}Print JSON", help_screen("env", 80))


def test_top_level_help_offers_shell_completion():
    screen = help_screen(None, 80)
    assert "--install-completion" in screen and "--show-completion" in screen


def test_a_flag_takes_no_value(monkeypatch, capsys):
    code, out, err = run_main(monkeypatch, capsys, "env", "--json", "true")
    assert code == 2 and out == ""
    assert "unexpected extra argument" in err and "true" in err
    code, out, err = run_main(monkeypatch, capsys, "env", "--json")
    assert code == 0, err
    assert isinstance(json.loads(out), dict)


def test_completion_answers_bash_zsh_and_fish(monkeypatch, capsys):
    cases = [
        ({"_SLCBENCH_COMPLETE": "complete_bash", "COMP_WORDS": "slcbench ev", "COMP_CWORD": "1"}, "evaluate"),
        ({"_SLCBENCH_COMPLETE": "complete_bash", "COMP_WORDS": "slcbench env --device ", "COMP_CWORD": "3"}, "cuda"),
        ({"_SLCBENCH_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "slcbench ev"}, '"evaluate"'),
        (
            {"_SLCBENCH_COMPLETE": "complete_fish", "_TYPER_COMPLETE_ARGS": "slcbench ev"}
            | {"_TYPER_COMPLETE_FISH_ACTION": "get-args"},
            "evaluate\t",
        ),
    ]
    for env, expected in cases:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        code, out, err = run_main(monkeypatch, capsys)
        assert code == 0 and expected in out, (env, out, err)
        for key in env:
            monkeypatch.delenv(key)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_bash_script_completes_a_command_name(tmp_path):
    # The script `slcbench --show-completion` prints, sourced in bash, with `slcbench` this checkout.
    wrapper = tmp_path / "slcbench"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m slcbench "$@"\n')
    wrapper.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    script = subprocess.run(
        ["slcbench"], env={**env, "_SLCBENCH_COMPLETE": "source_bash"}, capture_output=True, text=True, check=True
    ).stdout
    (tmp_path / "completion.bash").write_text(script)
    probe = f'source "{tmp_path}/completion.bash"; COMP_WORDS=(slcbench ev); COMP_CWORD=1; '
    probe += '_slcbench_completion slcbench; echo "${COMPREPLY[*]}"'
    result = subprocess.run(["bash", "-c", probe], env=env, capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.split() == ["evaluate"], result
