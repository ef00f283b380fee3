"""Batches of encoder features: cached once for a frozen encoder, or computed per batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class FeatureSet:
    """A split's masks plus either cached encoder features or the images to encode.

    With a frozen encoder the five feature maps of every image are computed once
    (:func:`cache_features`), the main speed lever on a CPU; a trainable encoder keeps the
    images and runs ``encoder`` on each batch.
    """

    masks: torch.Tensor  # (N, H, W) int64
    feats: list[torch.Tensor] | None = None  # five (N, C_i, H_i, W_i)
    images: torch.Tensor | None = None  # (N, 3, H, W)
    encoder: Callable[[torch.Tensor], list[torch.Tensor]] | None = None

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    def batch(self, idx: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Encoder features (five maps) and masks of the images at ``idx``."""
        if self.feats is not None:
            return [f[idx] for f in self.feats], self.masks[idx]
        if self.images is None or self.encoder is None:
            raise ValueError("FeatureSet needs cached feats or images + encoder")
        return self.encoder(self.images[idx]), self.masks[idx]

    def batches(self, batch_size: int, generator: torch.Generator | None = None):
        """Yield (features, masks) over the split; shuffled when a generator is given."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        for start in range(0, n, batch_size):
            yield self.batch(order[start:start + batch_size])


@torch.no_grad()
def cache_features(encoder: nn.Module, images: torch.Tensor, masks: torch.Tensor,
                   batch_size: int = 16,
                   progress: Callable[[int], None] | None = None) -> FeatureSet:
    """Run a frozen encoder once over ``images`` (N, 3, H, W) and keep its five maps."""
    encoder.eval()
    chunks: list[list[torch.Tensor]] = []
    for start in range(0, images.shape[0], batch_size):
        chunks.append(encoder(images[start:start + batch_size]))
        if progress is not None:
            progress(min(batch_size, images.shape[0] - start))
    feats = [torch.cat([c[i] for c in chunks]) for i in range(len(chunks[0]))]
    return FeatureSet(masks=masks, feats=feats)
