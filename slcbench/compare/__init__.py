"""``slcbench compare``: two results files row by row, a verdict for each. Never imports torch."""
