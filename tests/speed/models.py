"""Small models for the sweep's tests, built through ``--arch python:tests.speed.models:NAME``."""

import os
import signal
import time

from torch import nn


def _small_cnn(channels: int, pooled: int, hidden: int) -> nn.Module:
    """A convolution, pooling to ``pooled`` x ``pooled``, a hidden layer and a 1000-unit top layer."""
    return nn.Sequential(
        nn.Conv2d(3, channels, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(pooled),
        nn.Flatten(),
        nn.Linear(channels * pooled * pooled, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 1000),
    )


def tiny_cnn() -> nn.Module:
    """A few milliseconds a batch on one core: enough to exercise the sweep's bookkeeping."""
    return _small_cnn(16, 4, 512)


def tiny_cnn_wide() -> nn.Module:
    """A second small architecture: a wider convolution and a 1024-unit top layer's input."""
    return _small_cnn(32, 2, 1024)


for _factory in (tiny_cnn, tiny_cnn_wide):
    _factory.input_size = 32  # type: ignore[attr-defined]


def killed_worker() -> nn.Module:
    """Kills the process that builds it with SIGKILL, as the out-of-memory killer would: only for workers."""
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable: SIGKILL cannot be caught")


killed_worker.input_size = 32  # type: ignore[attr-defined]


def _log_build(name: str) -> None:
    """Append ``name`` to the file SLCBENCH_TEST_BUILDS names (when set): which models a test's run built."""
    log = os.environ.get("SLCBENCH_TEST_BUILDS")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(name + "\n")


def _first_time(name: str) -> bool:
    """True the first time ``name`` is asked in the folder SLCBENCH_TEST_MARKERS names, False afterwards."""
    marker = os.path.join(os.environ["SLCBENCH_TEST_MARKERS"], name)
    if os.path.exists(marker):
        return False
    open(marker, "w").close()
    return True


def counted_cnn() -> nn.Module:
    """``tiny_cnn``, logging that it was built."""
    _log_build("counted_cnn")
    return tiny_cnn()


def fails_once() -> nn.Module:
    """Raises on its first build (its rows fail), builds ``tiny_cnn`` afterwards."""
    _log_build("fails_once")
    if _first_time("fails_once"):
        raise RuntimeError("a build failure for the test")
    return tiny_cnn()


def interrupted_once() -> nn.Module:
    """Ctrl-C on its first build, as if pressed while it was being measured; ``tiny_cnn`` afterwards."""
    _log_build("interrupted_once")
    if _first_time("interrupted_once"):
        raise KeyboardInterrupt
    return tiny_cnn()


for _factory in (counted_cnn, fails_once, interrupted_once):
    _factory.input_size = 32  # type: ignore[attr-defined]


def waits_to_be_interrupted() -> nn.Module:
    """Writes its process id to SLCBENCH_TEST_MARKERS/waiting, then waits two minutes (to be interrupted)."""
    with open(os.path.join(os.environ["SLCBENCH_TEST_MARKERS"], "waiting"), "w", encoding="utf-8") as handle:
        handle.write(str(os.getpid()))
    time.sleep(120)
    return tiny_cnn()


waits_to_be_interrupted.input_size = 32  # type: ignore[attr-defined]
