"""Optional dependencies: found without importing them, refused fast, with the install command that fits."""

import subprocess
import sys
from pathlib import Path

import pytest

from slcbench import extras
from slcbench.errors import SlcbenchError

ROOT = Path(__file__).resolve().parent.parent


def test_the_install_command_fits_a_checkout_and_an_installed_package(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert extras.install_command("plot") == 'pip install -e ".[plot]"'
    monkeypatch.chdir(tmp_path)
    assert extras.install_command("plot") == f'pip install -e "{ROOT}[plot]"'
    monkeypatch.setattr(extras, "_ROOT", tmp_path)  # a site-packages folder: no slcbench pyproject.toml beside
    assert extras.install_command("gpu") == "pip install 'slcbench[gpu]'"


def test_a_missing_module_is_named_with_its_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert not extras.is_installed("matplotlib") and not extras.is_installed("no_such_module.sub")
    with pytest.raises(SlcbenchError, match=r"^--plot needs matplotlib, which is not installed: pip install"):
        extras.require("matplotlib", "plot", "--plot")
    extras.require("numpy", "plot", "--plot")  # installed: nothing raised


@pytest.mark.parametrize("args", [["speed", "--plot"], ["speed", "--executor", "ray"], ["isbe"]])
def test_refusing_a_missing_extra_imports_no_torch(tmp_path, args):
    code = (
        "import sys; sys.modules['matplotlib'] = None; sys.modules['ray'] = None\n"
        "sys.argv = ['slcbench', *sys.argv[1:]]\n"
        "from slcbench.__main__ import main\n"
        "try:\n    main()\nexcept SystemExit as stop:\n    print(stop.code, 'torch' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *args, "-o", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.split() == ["2", "False"], done.stderr
    assert "which is not installed: pip install" in done.stderr
