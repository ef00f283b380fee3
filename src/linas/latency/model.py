"""Latency models: predicted latency of architectures from a LUT (pure numpy / torch)."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from linas.latency.lut import LUT
from linas.latency.sums import arch_sums, require_positive, space_minimum, space_sums
from linas.space import NUM_LAYERS, Arch

# one-sided 95% quantile of the standard normal distribution (1.6449), as specified
Z_95 = 1.645


class LatencyModel(Protocol):
    """Anything that predicts an architecture's latency in milliseconds."""

    def latency(self, arch: Arch) -> float: ...


class LUTLatencyModel:
    """Latency = fixed part + sum of the five op entries + adjacent-pair interaction terms.

    A model with pair terms is checked once, exactly, over all 21**5 architectures: it never
    predicts a non-positive latency (plain sums of positive entries are positive already).
    The check covers the LUT's full model; a model built with ``use_fixed=False`` on a LUT
    that has a fixed part is a decoder-only *feature* (pairs fitted end to end may hold part
    of the fixed cost) and is not checked.

    Args:
        lut: the device's table.
        use_fixed: add the LUT's fixed part when it has one.
        use_interactions: add the LUT's pair terms when it has them.

    Raises:
        LUTError: when the pair terms make some architecture's latency <= 0, naming the LUT
            file, the minimum and that architecture.
    """

    def __init__(self, lut: LUT, use_fixed: bool = True, use_interactions: bool = True) -> None:
        self.lut = lut
        self.table = np.asarray(lut.mean_ms, dtype=np.float64)  # (5, 21)
        has_fixed = use_fixed and lut.fixed_ms is not None
        self.fixed = float(lut.fixed_ms) if has_fixed and lut.fixed_ms is not None else 0.0
        self.fixed_std = float(lut.fixed_std_ms or 0.0) if has_fixed else 0.0
        self.pairs = (np.asarray(lut.interactions, dtype=np.float64)
                      if use_interactions and lut.interactions is not None else None)
        self._minimum: tuple[float, tuple[int, ...]] | None = None
        if self.pairs is not None and (use_fixed or lut.fixed_ms is None):
            self._minimum = require_positive(self.table, self.fixed, self.pairs,
                                             f"LUT {lut.source}")

    @property
    def end_to_end(self) -> bool:
        """True when predictions include the fixed part (encoder, fusions, classifier)."""
        return self.lut.fixed_ms is not None and self.fixed > 0

    def latency(self, arch: Arch) -> float:
        return float(self.predict(np.asarray([arch.choices]))[0])

    def predict(self, choices: np.ndarray) -> np.ndarray:
        """Latency (N,) in ms, float64, of architectures given as choice indices (N, 5)."""
        return arch_sums(self.table, self.fixed, self.pairs, choices)

    def exhaustive(self) -> np.ndarray:
        """Latency of all 21**5 architectures, float64, indexed by architecture id.

        The C-order flattening of the 5-D grid matches :func:`linas.space.choices_to_ids`;
        terms are added in the order :meth:`predict` adds them, so
        ``exhaustive()[choices_to_ids(c)] == predict(c)`` bit for bit. 33 MB.
        """
        return space_sums(self.table, self.fixed, self.pairs)

    def minimum(self) -> tuple[float, Arch]:
        """The fastest architecture of the space and its predicted latency (exact, cached)."""
        cached = getattr(self, "_minimum", None)  # models built by __new__ have none
        if cached is None:
            cached = self._minimum = space_minimum(self.table, self.fixed, self.pairs)
        low, best = cached
        return low, Arch(best)

    def p95(self, choices: np.ndarray) -> np.ndarray:
        """Predicted 95th-percentile latency (N,) in ms of architectures (N, 5).

        ``mean + 1.645 * sqrt(sum of the five entries' variances + fixed-part variance)``:
        the entries are timed independently, so their variances add and the sum of many
        timings is close to normal. The LUT's ``p95_ms`` entries are not summed, because the
        p95 of a sum is not the sum of the p95s (that would overstate it). Pair terms are
        means only (no spread of their own). ``std_ms`` is the IQR-filtered spread, so
        outliers such as OS preemption are not covered.

        Args:
            choices: (N, 5) choice indices.
        """
        choices = np.asarray(choices, dtype=np.int64)
        std = np.asarray(self.lut.std_ms, dtype=np.float64)
        var = np.zeros(len(choices))
        for layer in range(NUM_LAYERS):
            var = var + std[layer][choices[:, layer]] ** 2
        var = var + self.fixed_std ** 2
        return self.predict(choices) + Z_95 * np.sqrt(var)

    def latency_p95(self, arch: Arch) -> float:
        """:meth:`p95` of one architecture."""
        return float(self.p95(np.asarray([arch.choices]))[0])

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

