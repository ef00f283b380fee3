"""Search losses: segmentation CE and the per-device normalised latency penalty."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from linas.latency.model import LUTLatencyModel


def segmentation_ce(logits: torch.Tensor, target: torch.Tensor,
                    ignore_index: int = 255) -> torch.Tensor:
    """Pixel-wise cross-entropy; logits (B, C, H, W), target (B, H, W)."""
    return F.cross_entropy(logits, target, ignore_index=ignore_index)


def latency_penalty(probs: torch.Tensor, models: Sequence[LUTLatencyModel],
                    targets_ms: Sequence[float]) -> tuple[torch.Tensor, list[float]]:
    """Sum over devices of ``relu(E[latency_d] - target_d) / target_d``.

    Dividing by each device's own target makes a Raspberry Pi and a desktop GPU, whose
    latencies differ by 1000x, weigh alike. Returns (penalty, expected ms per device).
    """
    total = torch.zeros((), dtype=probs.dtype)
    expected: list[float] = []
    for model, target in zip(models, targets_ms, strict=True):
        e = model.expected(probs)
        expected.append(float(e.detach()))
        total = total + torch.relu(e - target) / target
    return total, expected
