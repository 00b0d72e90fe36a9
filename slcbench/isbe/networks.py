"""The ISBE paper's two networks, for one-channel images (8×8 digits, 28×28 MNIST).

What our copy of the paper states: net 1 has two convolutions and two linear units, the last a
projection from the deep feature vector to the k raw scores; net 2 has two blocks of three
convolutions and is purely convolutional except for the final projection, the last convolution of
each block padded so that it keeps the resolution. The relocation variant trains a bias on the
projection (``bias=True``), which relocates the normalisation's input; without it the projection has
no bias.

Our choices, as the layer sizes are lost from our copy: 3×3 kernels; ReLU after each convolution and
after net 1's hidden linear layer; 2×2 max-pooling after each convolution of net 1 and after each block
of net 2; 32 maps in the first convolution or block, 64 in the second; 128 hidden units in net 1. In
net 2 the first two convolutions of a block are unpadded where the image allows it (MNIST: 28 → 26 →
24 → 24, pool to 12, then 10 → 8 → 8, pool to 4); an 8×8 digit cannot lose four pixels per block twice,
so on images under ``UNPADDED_MIN_SIZE`` pixels every convolution is padded (8, pool to 4, pool to 2).
"""

from __future__ import annotations

from torch import nn

from slcbench.isbe.config import Network

UNPADDED_MIN_SIZE = 16
WIDTHS = (32, 64)
HIDDEN_UNITS = 128


def net1(in_channels: int, image_size: int, num_classes: int, *, relocated: bool) -> nn.Sequential:
    """Two convolutions (each with ReLU and 2×2 max-pooling), a hidden linear layer, the projection."""
    layers: list[nn.Module] = []
    channels, size = in_channels, image_size
    for width in WIDTHS:
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        channels, size = width, size // 2
    return nn.Sequential(
        *layers,
        nn.Flatten(),
        nn.Linear(channels * size * size, HIDDEN_UNITS),
        nn.ReLU(),
        nn.Linear(HIDDEN_UNITS, num_classes, bias=relocated),
    )


def net2(in_channels: int, image_size: int, num_classes: int, *, relocated: bool) -> nn.Sequential:
    """Two blocks of three convolutions (ReLU after each, 2×2 max-pooling after each block), the projection."""
    padding = 0 if image_size >= UNPADDED_MIN_SIZE else 1
    layers: list[nn.Module] = []
    channels, size = in_channels, image_size
    for width in WIDTHS:
        for pad in (padding, padding, 1):  # the block's last convolution keeps the resolution
            layers += [nn.Conv2d(channels, width, 3, padding=pad), nn.ReLU()]
            channels, size = width, size - 2 + 2 * pad
        layers.append(nn.MaxPool2d(2))
        size //= 2
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * size * size, num_classes, bias=relocated))


def build_network(
    network: Network, image_shape: tuple[int, int, int], num_classes: int, *, relocated: bool
) -> nn.Sequential:
    """The network for images of ``image_shape`` (channels, height, width; square)."""
    channels, height, width = image_shape
    if height != width:
        raise ValueError(f"the ISBE networks take square images, got {height}×{width}")
    builder = net1 if network is Network.net1 else net2
    return builder(channels, height, num_classes, relocated=relocated)
