"""Small stand-ins shared by the search tests (importable: pytest's ``pythonpath`` holds
``tests``): a supernet of 1x1 convs, cached-feature data, a toy latency model."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from linas.data import FeatureSet
from linas.latency import LUT, LUTLatencyModel
from linas.space import NUM_CHOICES, NUM_LAYERS


class TinyNet(nn.Module):
    """Stand-in supernet: a 1x1 conv 'encoder' and 5 layers x 21 candidate 1x1 convs."""

    def __init__(self, classes: int = 3, c: int = 4) -> None:
        super().__init__()
        self.encoder = nn.Conv2d(3, c, 1)
        self.layers = nn.ModuleList(nn.ModuleList(nn.Conv2d(c, c, 1) for _ in range(NUM_CHOICES))
                                    for _ in range(NUM_LAYERS))
        self.head = nn.Conv2d(c, classes, 1)

    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        return [self.encoder(images)]  # (B, c, H, W)

    def decode(self, feats, weights=None, choices=None):
        x = feats[-1]
        for i, cands in enumerate(self.layers):
            if choices is not None:
                y = cands[choices[i]](x)
                y = y if weights is None else y * weights[i][choices[i]]
            else:
                y = sum(weights[i][k] * cands[k](x) for k in range(NUM_CHOICES))
            x = torch.relu(y)
        return self.head(x)


def tiny_net(frozen: bool = True, seed: int = 0) -> TinyNet:
    """A TinyNet initialised from ``seed`` (the caller's RNG left alone), encoder frozen."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = TinyNet()
    net.encoder.requires_grad_(not frozen)
    return net


def tiny_data(n: int, seed: int, net: TinyNet | None = None) -> FeatureSet:
    """Cached 4-channel features, or (with ``net``) images that ``net``'s encoder encodes."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.randint(0, 3, (n, 6, 6), generator=g)
    if net is not None:
        return FeatureSet(masks=masks, images=torch.randn(n, 3, 6, 6, generator=g),
                          encoder=net.encode)
    return FeatureSet(masks=masks, feats=[torch.randn(n, 4, 6, 6, generator=g)])


def toy_model(seed: int) -> LUTLatencyModel:
    mean = np.random.default_rng(seed).uniform(1.0, 10.0, size=(NUM_LAYERS, NUM_CHOICES))
    return LUTLatencyModel(LUT(hardware=f"toy{seed}", input_size=(64, 64), mean_ms=mean,
                               std_ms=mean * 0.01))
