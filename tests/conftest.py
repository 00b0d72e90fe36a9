"""Test-session settings: one torch CPU thread, so that tests keep their pace on a machine shared with
other work (a second thread waits at every parallel region for a core that may be busy)."""

import signal

import pytest
import torch

torch.set_num_threads(1)


def restore_ctrl_c() -> None:
    """Ctrl-C's default for a child process: a shell that starts a job in the background (and some CI
    runners) leaves SIGINT ignored, and Python keeps it so, so a test's SIGINT would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def python_ctrl_c():
    """Python's own Ctrl-C handler in this process for the test, whatever the test run started with."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
