"""Stand-ins for ``measure_configuration`` that spawned worker processes import by name (tests only)."""

import os
import time
from pathlib import Path

from slcbench.speed.config import SpeedConfig
from slcbench.speed.worker import Measured, WorkerRecord


def meet_the_other_slot(config: SpeedConfig) -> Measured:
    """Record the GPU this worker was pinned to and when it ran; wait (30 s at most) until a worker pinned
    to another GPU has started, so that two workers that run at once are seen to overlap."""
    folder = Path(os.environ["SLCBENCH_TEST_MARKERS"])
    slot = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    started = time.time()
    (folder / f"{slot}-{config.archs[0].name}").touch()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(p.name.split("-")[0] != slot for p in folder.iterdir()):
        time.sleep(0.02)
    time.sleep(0.1)
    environment = {"slot": slot, "started": started, "ended": time.time()}
    return Measured((), WorkerRecord(host="stand-in", pid=os.getpid(), environment=environment))
