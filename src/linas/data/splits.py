"""Seeded train / architecture-validation / test splits, and in-memory tensor caches."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from linas._errors import ConfigError, DataError

SPLIT_NAMES = ("train", "arch_val", "test")


def split_indices(
    n: int, fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0
) -> dict[str, np.ndarray]:
    """Split ``range(n)`` into disjoint train / arch_val / test index sets by a seeded shuffle.

    Sizes follow ``fractions`` (largest-remainder rounding), and every split gets at least one
    index, so small datasets still yield all three.

    Args:
        n: number of samples, at least 3.
        fractions: three positive shares for train, arch_val and test, summing to 1.
        seed: shuffle seed; the same ``(n, fractions, seed)`` always gives the same splits.

    Returns:
        ``{"train", "arch_val", "test"}`` -> sorted int64 index arrays that cover ``range(n)``.

    Raises:
        DataError: ``n < 3``.
        ConfigError: ``fractions`` is not three positive numbers summing to 1.
    """
    shares = _check_fractions(fractions)
    if n < len(SPLIT_NAMES):
        raise DataError(
            f"dataset has {n} sample(s); train/arch_val/test splits need at least 3; add samples"
        )
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum(_split_sizes(n, shares))[:-1]
    parts = np.split(order, bounds)
    return {
        name: np.sort(part).astype(np.int64) for name, part in zip(SPLIT_NAMES, parts, strict=True)
    }


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    shares = np.asarray(fractions, dtype=np.float64)
    if shares.shape != (3,) or not np.all(shares > 0) or abs(shares.sum() - 1.0) > 1e-6:
        raise ConfigError(
            f"split fractions {tuple(fractions)} must be three positive shares (train, "
            "arch_val, test) summing to 1, e.g. (0.6, 0.2, 0.2)"
        )
    return shares


def _split_sizes(n: int, shares: np.ndarray) -> np.ndarray:
    """Largest-remainder sizes summing to ``n``, each at least 1 (needs ``n >= 3``)."""
    exact = shares * n
    sizes = np.floor(exact).astype(np.int64)
    leftover = n - int(sizes.sum())
    sizes[np.argsort(-(exact - sizes), kind="stable")[:leftover]] += 1
    # Give empty splits one sample each, taken from the currently largest split.
    for i in np.flatnonzero(sizes == 0):
        sizes[np.argmax(sizes)] -= 1
        sizes[i] = 1
    return sizes


def load_tensors(
    dataset: Dataset[tuple[torch.Tensor, torch.Tensor]], indices: Sequence[int] | np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read the given samples into two stacked tensors (datasets here are small).

    Args:
        dataset: yields ``(image (3, H, W) float32, mask (H, W) int64)``; all of one size.
        indices: sample indices, at least one.

    Returns:
        ``(images (N, 3, H, W) float32, masks (N, H, W) int64)``.

    Raises:
        DataError: no indices, or samples of different sizes (pass a ``size`` to the loader).
    """
    if len(indices) == 0:
        raise DataError("load_tensors: no indices given; pass a non-empty split")
    samples = [dataset[int(i)] for i in indices]
    shapes = {tuple(image.shape) for image, _ in samples}
    if len(shapes) > 1:
        raise DataError(
            f"load_tensors: samples have different sizes {sorted(shapes)[:4]}; pass size=(H, W) "
            "to load_dataset so every sample is resized alike"
        )
    images = torch.stack([image for image, _ in samples])  # (N, 3, H, W)
    masks = torch.stack([mask for _, mask in samples])  # (N, H, W)
    return images, masks
