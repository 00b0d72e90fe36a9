"""``slcbench isbe``: Skarbek's ISBE experiment (cross-entropy against ISBE's soft error), timed and compared.

- ``config.py``: what to run (``IsbeConfig``, the loss options), validated once, torch-free.
- ``networks.py``: the paper's two networks, with or without the relocation (a bias on the projection).
- ``objectives.py``: each loss option's forward stage and backward call, and its monitoring value.
- ``timing.py``: forward, backward and optimizer time of one training step from clock marks.
- ``experiment.py``: every option of one network trained in lockstep, timed step by step, interleaved.
- ``analysis.py``: the numbers of the paper's Tables 1-4 with their intervals, torch-free.
- ``report.py``: the tables and the learning-curve figures; ``run.py``: ``run_isbe`` and ``IsbeRun``.
"""
