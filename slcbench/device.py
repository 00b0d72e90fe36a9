"""Which device a command runs on: ``auto`` means CUDA when present, else the CPU."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from enum import StrEnum
from typing import TYPE_CHECKING

from slcbench.errors import SlcbenchError

if TYPE_CHECKING:
    import torch


class DeviceChoice(StrEnum):
    auto = "auto"
    cuda = "cuda"
    cpu = "cpu"


def resolve_device(choice: DeviceChoice | str, *, here: bool = True) -> torch.device:
    """The torch device for ``choice``; an explicit ``cuda`` without a GPU is an error, not a fallback.

    ``here=False``: the work runs on other machines (a cluster's workers), so an explicit ``cuda``
    is taken as asked and checked by the workers; ``auto`` still looks at this machine.
    """
    import torch  # here, not at the top: choosing options must not cost torch's import

    choice = DeviceChoice(choice)
    if choice is DeviceChoice.auto:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice is DeviceChoice.cuda and here and not torch.cuda.is_available():
        raise SlcbenchError("--device cuda was requested but no CUDA device is available")
    return torch.device(choice.value)


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` torch CPU threads (None: leave them) and restore the caller's count afterwards."""
    import torch

    saved = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved)
