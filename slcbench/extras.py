"""Optional dependencies (the ``plot``, ``gpu`` and ``cluster`` extras): whether one is installed, found
without importing it, and the install command that fits how slcbench itself was installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from slcbench.errors import SlcbenchError

_ROOT = Path(__file__).resolve().parent.parent


def install_command(extra: str) -> str:
    """``pip install -e ".[extra]"`` from a checkout (the folder named when it is not the current one),
    ``pip install 'slcbench[extra]'`` for an installed package."""
    if not _is_checkout(_ROOT):
        return f"pip install 'slcbench[{extra}]'"
    folder = "." if Path.cwd().resolve() == _ROOT else str(_ROOT)
    return f'pip install -e "{folder}[{extra}]"'


def is_installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module set to None in sys.modules
        return False


def require(module: str, extra: str, purpose: str) -> None:
    """SlcbenchError naming the install command when ``module`` is missing: ``purpose`` says who needs it."""
    if not is_installed(module):
        raise SlcbenchError(f"{purpose} needs {module}, which is not installed: {install_command(extra)}")


def _is_checkout(root: Path) -> bool:
    try:
        return 'name = "slcbench"' in (root / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return False
