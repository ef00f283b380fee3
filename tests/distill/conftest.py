"""Tiny, fast stand-ins for the distillation tests: a frozen 1x1-conv "encoder" with
DenseNet121's five tap shapes (so cached features cost nothing), a net whose ``extract(arch)``
builds the real decoder candidates seeded by the architecture (the Supernet's contract for
the final stage), and cached FeatureSets of random 32x32 images."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from linas.data import FeatureSet, cache_features
from linas.space import CHOICE_KEYS, LAYERS, Arch
from linas.supernet import DecoderHead, DenseNetEncoder, SegmentationModel, build_candidate

NUM_CLASSES = 3
SIZE = (32, 32)


class TinyEncoder(nn.Module):
    """Five maps with DenseNet121's channels and strides: avg-pool then a 1x1 conv."""

    channels = DenseNetEncoder.channels
    strides = DenseNetEncoder.strides

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.ModuleList(nn.Conv2d(3, c, 1) for c in self.channels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [p(F.avg_pool2d(x, s)) for p, s in zip(self.proj, self.strides, strict=True)]


class TinyNet:
    """Stands in for :class:`~linas.supernet.Supernet` where only ``extract`` is used: the same
    architecture always starts from the same weights."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.encoder = TinyEncoder()
            self.head = DecoderHead(TinyEncoder.channels, num_classes)
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        self.encoder.eval()
        self.num_classes = num_classes

    def extract(self, arch: Arch) -> SegmentationModel:
        with torch.random.fork_rng():
            torch.manual_seed(arch.index % 2**31)
            layers = nn.ModuleList(build_candidate(CHOICE_KEYS[c], s.c_in, s.c_out)
                                   for c, s in zip(arch.choices, LAYERS, strict=True))
        return SegmentationModel(copy.deepcopy(self.encoder), layers,  # type: ignore[arg-type]
                                 copy.deepcopy(self.head), arch)


@pytest.fixture(autouse=True)
def _torch_threads() -> None:
    """Overrides the suite's 2 threads: these tensors are tiny, and one thread keeps them
    fast on a machine whose other core is busy (2 threads were ~10x slower there)."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_net() -> TinyNet:
    return TinyNet()


@pytest.fixture(scope="session")
def tiny_splits(tiny_net: TinyNet) -> dict[str, FeatureSet]:
    """train 7 images (so a batch of 3 leaves a short last batch), arch_val 3, test 4; some
    pixels carry the ignore index 255."""
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(14, 3, *SIZE, generator=gen)
    masks = torch.randint(0, NUM_CLASSES, (14, *SIZE), generator=gen)
    masks[:, :4, :4] = 255
    feats = cache_features(tiny_net.encoder, images, masks)
    assert feats.feats is not None
    cuts = {"train": slice(0, 7), "arch_val": slice(7, 10), "test": slice(10, 14)}
    return {k: FeatureSet(masks=masks[c], feats=[f[c] for f in feats.feats])
            for k, c in cuts.items()}
