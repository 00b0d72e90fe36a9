"""The paper's networks (Section VI-A): an MLP for MNIST-like data, six convolutions for colour images.

What it does not state, and our choices: 'same' padding for the convolutions and padding 1 for the
pools (32 → 16 → 8 → 4).
"""

from __future__ import annotations

from torch import nn

from slcbench.train.config import DatasetName
from slcbench.train.data import DataSplits

# The paper trains an MLP on MNIST (and we on digits); a convolutional network on the colour images.
MLP_DATASETS = (DatasetName.digits, DatasetName.mnist)


def network_name(dataset: DatasetName) -> str:
    """The network's name in the recorded settings."""
    return "mlp-2x500-bn-relu" if dataset in MLP_DATASETS else "six-conv-1024"


def mlp(in_features: int, num_classes: int, hidden: int = 500) -> nn.Sequential:
    """The paper's MNIST network: two dense layers of 500 units, each followed by batch norm and ReLU."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def six_conv_net(in_channels: int, num_classes: int, image_size: int = 32) -> nn.Sequential:
    """The paper's SVHN/CIFAR network: six convolutions (5,1,5,1,5,1; 128..512 maps), three max-pools,
    a 1024-unit dense layer, batch norm and ReLU after each of them."""
    layers: list[nn.Module] = []
    channels = in_channels
    size = image_size
    for width in (128, 256, 512):
        for kernel in (5, 1):
            layers += [nn.Conv2d(channels, width, kernel, padding=kernel // 2), nn.BatchNorm2d(width), nn.ReLU()]
            channels = width
        layers.append(nn.MaxPool2d(3, stride=2, padding=1))
        size = (size + 1) // 2
    return nn.Sequential(
        *layers,
        nn.Flatten(),
        nn.Linear(channels * size * size, 1024),
        nn.BatchNorm1d(1024),
        nn.ReLU(),
        nn.Linear(1024, num_classes),
    )


def paper_network(data: DataSplits) -> nn.Module:
    """The paper's model for the data set: the MLP for digits and MNIST, the conv net for colour images."""
    channels, height, width = data.image_shape
    if data.name in MLP_DATASETS:
        return mlp(channels * height * width, data.num_classes)
    return six_conv_net(channels, data.num_classes, image_size=height)
