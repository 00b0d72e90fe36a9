"""``slcbench speed``: forward time with a top layer of 1 (SLC) or k units, the paper's Table III.

Torch-free to import: ``config`` and ``protocol`` describe a run; ``run.run_speed`` (which imports
torch) measures it. The command line imports the heavy modules only when the command runs.
"""
