"""Analytic complexity of the decoder candidates: FLOPs and #params per (layer, choice).

Counts follow the modules of :mod:`linas.supernet.ops` exactly (no torch needed):

* FLOPs are multiply-accumulates (MACs, the NAS convention) of the convolutions: a transposed
  conv costs ``in_pixels * c_in * c_out * k^2 / groups``, a conv ``out_pixels * c_in * c_out *
  k^2 / groups``; EdgeConv's fixed Sobel conv is counted, BN (foldable), ReLU, ``abs`` and the
  channel sum are not.
* #params counts trainable parameters: conv weights (no biases) and BN affine pairs.

A subnet's complexity is the sum of its five candidates, **decoder-only**: the fixed part
(encoder, skip fusions, classifier) is the same for every subnet, so it would shift totals but
never change an order, a tercile or a ratio's ranking. Every candidate's FLOPs scale with
``H * W``, so FLOP ratios and terciles do not depend on the input size either.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from linas._errors import ConfigError
from linas.space import CHOICE_KEYS, LAYERS, NUM_CHOICES, NUM_LAYERS, SearchSpace, parse_choice

REFERENCE_SIZE: tuple[int, int] = (128, 128)


def _op_cost(op: str, c_in: int, mid: int, in_px: int) -> tuple[int, int]:
    """(MACs, params) of the bare op ``c_in @ in_px pixels -> mid @ 4 * in_px pixels``."""
    out_px = 4 * in_px
    if op.startswith("Conv"):
        k = int(op[4])
        return in_px * c_in * mid * k * k, c_in * mid * k * k
    if op.startswith("DWSep") or op == "DilatedDWSep":
        k = 5 if op == "DWSep5x5" else 3
        depthwise, pointwise = c_in * k * k, c_in * mid
        return in_px * depthwise + out_px * pointwise, depthwise + pointwise
    if op == "EdgeConv":  # Sobel (2 filters per channel, fixed) then transposed 3x3 on 2*c_in
        conv = 2 * c_in * mid * 9
        return in_px * (2 * c_in * 9) + in_px * conv, conv
    raise ConfigError(f"complexity: no cost formula for op '{op}'; add one to "
                      "linas/search/complexity.py")


def candidate_cost(key: str, c_in: int, c_out: int, out_hw: tuple[int, int]) -> tuple[int, int]:
    """(MACs, params) of one candidate (op -> BN -> ReLU -> width projection).

    Args:
        key: LUT key such as ``'DWSep5x5_w75'``.
        c_in: input channels.
        c_out: output channels of the layer.
        out_hw: output (H, W) of the layer (twice the input's).

    Returns:
        Multiply-accumulates and trainable parameters of the candidate.
    """
    op, width = parse_choice(key)
    mid = max(1, int(round(width * c_out)))
    out_px = out_hw[0] * out_hw[1]
    macs, params = _op_cost(op, c_in, mid, out_px // 4)
    params += 2 * mid  # BN after the op
    if mid != c_out:  # 1x1 projection + BN back to c_out
        macs += out_px * mid * c_out
        params += mid * c_out + 2 * c_out
    return macs, params


@dataclass(frozen=True)
class ComplexityTable:
    """Per-candidate FLOPs (MACs) and #params, each (5, 21), at input size ``size``."""

    flops: np.ndarray  # (5, 21) float64
    params: np.ndarray  # (5, 21) float64
    size: tuple[int, int]

    def flops_of(self, choices: np.ndarray) -> np.ndarray:
        """Decoder FLOPs of architectures given as choice indices (N, 5) (or one (5,))."""
        return _gather(self.flops, choices)

    def params_of(self, choices: np.ndarray) -> np.ndarray:
        """Decoder #params of architectures given as choice indices (N, 5) (or one (5,))."""
        return _gather(self.params, choices)

    @property
    def max_flops(self) -> float:
        """Largest subnet FLOPs over the whole space (per-layer maxima add up)."""
        return float(self.flops.max(axis=1).sum())

    @property
    def params_range(self) -> tuple[float, float]:
        """Smallest and largest subnet #params over the whole space."""
        return float(self.params.min(axis=1).sum()), float(self.params.max(axis=1).sum())

    @cached_property
    def flops_terciles(self) -> np.ndarray:
        """The two FLOPs terciles (2,) over all 21**5 architectures (exact, vectorised)."""
        return np.quantile(self.flops_of(SearchSpace().all_choices()), [1 / 3, 2 / 3])


def _gather(table: np.ndarray, choices: np.ndarray) -> np.ndarray:
    c = np.asarray(choices, dtype=np.int64)
    if c.shape[-1] != NUM_LAYERS or c.min(initial=0) < 0 or c.max(initial=0) >= NUM_CHOICES:
        raise ConfigError(f"choices of shape {c.shape}: expected (..., {NUM_LAYERS}) indices "
                          f"in 0..{NUM_CHOICES - 1}")
    return table[np.arange(NUM_LAYERS), c].sum(axis=-1)  # (...,)


def complexity_table(size: tuple[int, int] = REFERENCE_SIZE) -> ComplexityTable:
    """FLOPs and #params of every (layer, choice) at input ``size`` (H, W).

    Args:
        size: input image (H, W); each a multiple of 32.

    Returns:
        The :class:`ComplexityTable`.

    Raises:
        ConfigError: a size that is not a multiple of 32.
    """
    if len(size) != 2 or min(size) < 32 or any(s % 32 for s in size):
        raise ConfigError(f"complexity size {size}: expected (H, W), multiples of 32")
    flops = np.zeros((NUM_LAYERS, NUM_CHOICES))
    params = np.zeros((NUM_LAYERS, NUM_CHOICES))
    for i, spec in enumerate(LAYERS):
        hw = (size[0] // spec.out_stride, size[1] // spec.out_stride)
        for j, key in enumerate(CHOICE_KEYS):
            flops[i, j], params[i, j] = candidate_cost(key, spec.c_in, spec.c_out, hw)
    return ComplexityTable(flops, params, (int(size[0]), int(size[1])))
