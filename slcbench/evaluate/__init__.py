"""``slcbench evaluate``: SLC metrics of saved logits. Never imports torch: it must start fast."""
