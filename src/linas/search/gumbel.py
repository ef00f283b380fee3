"""Gumbel-softmax sampling of architecture weights and the temperature schedule."""

from __future__ import annotations

import math

import torch


def gumbel_noise(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Standard Gumbel noise from a seeded generator."""
    u = torch.rand(shape, generator=generator).clamp_(1e-9, 1.0 - 1e-9)
    return -torch.log(-torch.log(u))


def gumbel_softmax(logits: torch.Tensor, tau: float, hard: bool,
                   generator: torch.Generator) -> tuple[torch.Tensor, list[int]]:
    """Sample per-layer weights (L, K) and the argmax choice of each layer.

    Soft: weights are ``softmax((logits + g) / tau)``. Hard: straight-through one-hot
    (``one_hot - soft.detach() + soft``), so only the chosen path need be computed while the
    gradient still reaches every logit of the layer through the softmax.
    """
    soft = torch.softmax((logits + gumbel_noise(tuple(logits.shape), generator)) / tau, dim=-1)
    index = soft.argmax(dim=-1)
    if not hard:
        return soft, index.tolist()
    one_hot = torch.zeros_like(soft).scatter_(-1, index.unsqueeze(-1), 1.0)
    return one_hot - soft.detach() + soft, index.tolist()


def temperature(epoch: int, epochs: int, tau_start: float, tau_end: float) -> float:
    """Exponential annealing from ``tau_start`` (first epoch) to ``tau_end`` (last epoch)."""
    if epochs <= 1:
        return tau_end
    frac = epoch / (epochs - 1)
    return float(tau_start * math.exp(frac * math.log(tau_end / tau_start)))
