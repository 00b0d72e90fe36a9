"""The console-script entry point: usage errors are one line on stderr with click's exit code.

CliRunner calls the typer app in standalone mode, which draws click's multi-line box, so these
tests go through ``slcbench.cli.main`` the way the installed ``slcbench`` script does.
"""

import subprocess
import sys

import pytest

from slcbench import __version__
from slcbench.cli import main


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["slcbench", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["speed", "--precision", "fp8"], "slcbench: error: Invalid value for '--precision'"),
        (["speed", "--bogus"], "slcbench: error: No such option: --bogus (see 'slcbench speed --help')"),
        (["nosuch"], "slcbench: error: No such command 'nosuch'."),
        (["evaluate"], "slcbench: error: Missing argument"),
        (["compare", "only-one.json"], "slcbench: error: Missing argument"),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(monkeypatch, capsys, args, message):
    code, out, err = run_main(monkeypatch, capsys, *args)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(message), err


def test_bad_input_inside_a_command_is_one_line_with_exit_code_2(monkeypatch, capsys, tmp_path):
    missing = tmp_path / "absent.npz"
    code, out, err = run_main(monkeypatch, capsys, "evaluate", str(missing))
    assert code == 2
    assert err.strip().splitlines() == [f"slcbench: error: {missing}: no such file or folder"]


def test_help_and_version_exit_zero(monkeypatch, capsys):
    code, out, err = run_main(monkeypatch, capsys, "speed", "--help")
    assert code == 0 and "--classes" in out and err == ""
    code, out, err = run_main(monkeypatch, capsys, "--version")
    assert code == 0 and out.strip() == f"slcbench {__version__}"


def test_no_arguments_prints_help_without_an_empty_error_line(monkeypatch, capsys):
    code, out, err = run_main(monkeypatch, capsys)
    assert code == 2  # click's convention for a group called without a command
    assert "Usage" in out + err and "error" not in err


TORCH_FREE_MODULES = [
    "slcbench.cli",
    "slcbench.evaluate.cli",
    "slcbench.evaluate.evaluation",
    "slcbench.evaluate.report",
    "slcbench.evaluate.run",
    "slcbench.compare.files",
    "slcbench.results",
    "slcbench.speed.config",
    "slcbench.speed.nvml",
    "slcbench.speed.executors",
    "slcbench.speed.worker",
    "slcbench.train.config",
]


@pytest.mark.parametrize("module", TORCH_FREE_MODULES)
def test_the_command_line_evaluate_and_compare_do_not_import_torch(module):
    # `slcbench --help`, `evaluate` and `compare` need no torch: importing it costs ~2 s and
    # several hundred MiB, which would also count against evaluate's memory budget.
    heavy = "('torch', 'torchvision', 'timm', 'scipy.stats')"
    code = f"import sys, {module}; print(sorted(m for m in {heavy} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
