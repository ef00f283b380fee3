"""Decoder pieces shared by the supernet and extracted models: skip fusion, classifier."""

from __future__ import annotations

import torch
from torch import nn

from linas.space import LAYERS

# Encoder tap joined after decoder layer i (0-based): layer 0 output is at stride 16, so it
# meets the stride-16 tap (index 3), ..., layer 3 output (stride 2) meets tap 0.
SKIP_TAP: tuple[int, ...] = (3, 2, 1, 0)


class SkipFusion(nn.Module):
    """Fixed, unsearched fusion: ``relu(x + proj(skip))``, proj = 1x1 conv + BN when the
    channel counts differ, identity otherwise."""

    def __init__(self, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.proj: nn.Module = (nn.Identity() if c_skip == c_out else
                                nn.Sequential(nn.Conv2d(c_skip, c_out, 1, bias=False),
                                              nn.BatchNorm2d(c_out)))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.proj(skip))  # (B, C_out, H, W)


class DecoderHead(nn.Module):
    """The fixed parts of the decoder: the four skip fusions and the 1x1 classifier."""

    def __init__(self, encoder_channels: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.fusions = nn.ModuleList(
            SkipFusion(encoder_channels[SKIP_TAP[i]], LAYERS[i].c_out) for i in range(4))
        self.classifier = nn.Conv2d(LAYERS[-1].c_out, num_classes, 1)

    def fuse(self, i: int, x: torch.Tensor, feats: list[torch.Tensor]) -> torch.Tensor:
        """Join the encoder tap after decoder layer ``i`` (no-op after the last layer)."""
        if i < len(self.fusions):
            return self.fusions[i](x, feats[SKIP_TAP[i]])
        return x
