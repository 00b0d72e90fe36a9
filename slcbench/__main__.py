"""The ``slcbench`` command and ``python -m slcbench``.

A first module that imports almost nothing, so that Ctrl-C while the command line is still loading
(typer, numpy, pandas: about half a second) is the same one line and exit code as later.
"""

import sys

from slcbench.errors import EXIT_INTERRUPTED


def main() -> None:
    try:
        from slcbench.cli import main as run_command_line

        run_command_line()
    except KeyboardInterrupt:
        sys.stderr.write("slcbench: error: interrupted\n")
        _forget_interrupts_seen_by_embedded_code()
        raise SystemExit(EXIT_INTERRUPTED) from None
    except SystemExit as stop:
        if stop.code == EXIT_INTERRUPTED:  # only an interrupted run can carry the mark
            _forget_interrupts_seen_by_embedded_code()
        raise


def _forget_interrupts_seen_by_embedded_code() -> None:
    """CPython ends the process by SIGINT, not with our exit code, once a Ctrl-C has passed through
    code run by ``PyRun_String`` (Cython modules do that while pandas imports), even if it was caught;
    running one more such string clears that mark."""
    import ctypes

    ctypes.pythonapi.PyRun_SimpleString(b"")


if __name__ == "__main__":
    main()
