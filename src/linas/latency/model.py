"""Latency models: predicted latency of architectures from a LUT (pure numpy / torch)."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from linas.latency.lut import LUT
from linas.space import NUM_CHOICES, NUM_LAYERS, Arch


class LatencyModel(Protocol):
    """Anything that predicts an architecture's latency in milliseconds."""

    def latency(self, arch: Arch) -> float: ...


class LUTLatencyModel:
    """Latency = fixed part + sum of the five op entries + adjacent-pair interaction terms.

    Args:
        lut: the device's table.
        use_fixed: add the LUT's fixed part when it has one.
        use_interactions: add the LUT's pair terms when it has them.
    """

    def __init__(self, lut: LUT, use_fixed: bool = True, use_interactions: bool = True) -> None:
        self.lut = lut
        self.table = np.asarray(lut.mean_ms, dtype=np.float64)  # (5, 21)
        self.fixed = float(lut.fixed_ms) if (use_fixed and lut.fixed_ms is not None) else 0.0
        self.pairs = (np.asarray(lut.interactions, dtype=np.float64)
                      if use_interactions and lut.interactions is not None else None)

    @property
    def end_to_end(self) -> bool:
        """True when predictions include the fixed part (encoder, fusions, classifier)."""
        return self.lut.fixed_ms is not None and self.fixed > 0

    def latency(self, arch: Arch) -> float:
        return float(self.predict(np.asarray([arch.choices]))[0])

    def predict(self, choices: np.ndarray) -> np.ndarray:
        """Latency (N,) in ms of architectures given as choice indices (N, 5)."""
        choices = np.asarray(choices, dtype=np.int64)
        out = self.table[np.arange(NUM_LAYERS)[None, :], choices].sum(axis=1) + self.fixed
        if self.pairs is not None:
            for i in range(NUM_LAYERS - 1):
                out = out + self.pairs[i][choices[:, i], choices[:, i + 1]]
        return out

    def exhaustive(self) -> np.ndarray:
        """Latency of all 21**5 architectures, float32, indexed by architecture id.

        Built by broadcasting five (21,) rows (and four (21, 21) pair terms) into a 5-D grid
        whose C-order flattening matches :func:`linas.space.choices_to_ids`.
        """
        grid = np.zeros((NUM_CHOICES,) * NUM_LAYERS, dtype=np.float32)
        for i in range(NUM_LAYERS):
            shape = [1] * NUM_LAYERS
            shape[i] = NUM_CHOICES
            grid += self.table[i].astype(np.float32).reshape(shape)
        if self.pairs is not None:
            for i in range(NUM_LAYERS - 1):
                shape = [1] * NUM_LAYERS
                shape[i], shape[i + 1] = NUM_CHOICES, NUM_CHOICES
                grid += self.pairs[i].astype(np.float32).reshape(shape)
        grid += np.float32(self.fixed)
        return grid.reshape(-1)

    def expected(self, probs: torch.Tensor) -> torch.Tensor:
        """Differentiable expected latency under per-layer choice probabilities (5, 21).

        Pair terms use the outer product of adjacent layers' probabilities, so on one-hot
        probabilities this equals :meth:`predict` exactly.
        """
        table = torch.as_tensor(self.table, dtype=probs.dtype, device=probs.device)
        total = (probs * table).sum() + self.fixed
        if self.pairs is not None:
            pairs = torch.as_tensor(self.pairs, dtype=probs.dtype, device=probs.device)
            for i in range(NUM_LAYERS - 1):
                total = total + probs[i] @ pairs[i] @ probs[i + 1]
        return total

    def bounds(self) -> tuple[float, float]:
        """Exact (min, max) latency over the whole space."""
        lat = self.exhaustive()
        return float(lat.min()), float(lat.max())
