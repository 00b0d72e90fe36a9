"""``slcbench env``: what a benchmark report must carry about the machine (``collect`` imports torch)."""
