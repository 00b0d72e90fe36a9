"""The paper's two networks on 8×8 digits and 28×28 MNIST, with and without the relocation."""

import pytest
import torch
from torch import nn

from slcbench.isbe.config import Network
from slcbench.isbe.networks import build_network


def _layers(model, kind):
    return [m for m in model.modules() if isinstance(m, kind)]


@pytest.mark.parametrize(
    ("network", "size", "convolutions", "linears", "features"),
    [
        (Network.net1, 8, 2, 2, 128),
        (Network.net1, 28, 2, 2, 128),
        (Network.net2, 8, 6, 1, 64 * 2 * 2),  # every convolution padded: 8, pool 4, pool 2
        (Network.net2, 28, 6, 1, 64 * 4 * 4),  # 28 → 26 → 24 → 24, pool 12 → 10 → 8 → 8, pool 4
    ],
)
@pytest.mark.parametrize("relocated", [False, True])
def test_layers_shapes_and_the_relocation_bias(network, size, convolutions, linears, features, relocated):
    model = build_network(network, (1, size, size), 10, relocated=relocated)
    assert len(_layers(model, nn.Conv2d)) == convolutions and len(_layers(model, nn.Linear)) == linears
    projection = _layers(model, nn.Linear)[-1]
    assert projection.in_features == features and projection.out_features == 10
    assert (projection.bias is not None) == relocated
    assert all(conv.bias is not None for conv in _layers(model, nn.Conv2d))
    assert model(torch.rand(3, 1, size, size)).shape == (3, 10)


def test_net2s_last_convolution_of_each_block_keeps_the_resolution():
    paddings = [
        conv.padding for conv in _layers(build_network(Network.net2, (1, 28, 28), 10, relocated=False), nn.Conv2d)
    ]
    assert paddings == [(0, 0), (0, 0), (1, 1)] * 2


def test_relocation_adds_only_the_bias_under_the_same_seed():
    torch.manual_seed(4)
    plain = build_network(Network.net1, (1, 8, 8), 10, relocated=False)
    torch.manual_seed(4)
    relocated = build_network(Network.net1, (1, 8, 8), 10, relocated=True)
    plain_state, relocated_state = plain.state_dict(), relocated.state_dict()
    assert set(relocated_state) - set(plain_state) == {"9.bias"}  # the projection, the last layer
    assert all(torch.equal(plain_state[name], relocated_state[name]) for name in plain_state)


def test_non_square_images_are_refused():
    with pytest.raises(ValueError, match="square"):
        build_network(Network.net1, (1, 8, 6), 10, relocated=False)
