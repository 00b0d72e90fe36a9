"""Test-session settings: one torch CPU thread, so that tests keep their pace on a machine shared with
other work (a second thread waits at every parallel region for a core that may be busy)."""

import torch

torch.set_num_threads(1)
