"""``slcbench train``: the paper's models trained with every PoLS loss.

``config`` is torch-free; the other modules import torch.
"""
